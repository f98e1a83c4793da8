"""The job record: one Redis hash per job, and the name of every field in it."""

from __future__ import annotations

import re
from enum import StrEnum

JOB_ID = re.compile(r"[0-9a-f]{32}")
"""The shape of every job id the producer makes (a UUID4 as hex); nothing else is a job."""


def is_job_id(value: object) -> bool:
    """Whether `value` is shaped like a job id the producer makes."""
    return isinstance(value, str) and JOB_ID.fullmatch(value) is not None


class Field(StrEnum):
    """The fields of a job record hash; the Lua scripts use exactly these names."""

    STATE = "state"
    MESSAGE = "message"
    """The validated message, as the wire JSON with media headers in the string form."""
    PHONE_ID = "phone_id"
    TO = "to"
    BUTTONS = "buttons"
    """The button ids the message offers, as a JSON list: a reply is matched by them."""
    CALLBACK_URL = "callback_url"
    IDEMPOTENCY_KEY = "idempotency_key"
    TRACE = "trace"
    """The W3C traceparent of the request that enqueued the job, when tracing is on."""
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    SEND_AT = "send_at"
    """When the job was asked to go out (scheduled jobs only)."""
    DUE_AT = "due_at"
    """When the job may be sent next: its send time, a retry or a rate-limit slot."""
    SENT_AT = "sent_at"
    ATTEMPTS = "attempts"
    """HTTP attempts over the job's whole life."""
    ATTEMPT_BASE = "attempt_base"
    """Attempts made before the last replay: the attempt budget counts from here."""
    SENT_ATTEMPT = "sent_attempt"
    WORKER = "worker"
    """The worker that claimed the job last."""
    OUTCOME = "outcome"
    """The kind of the last send's outcome (sent, transient, throttled...)."""
    ERROR = "error"
    RESULT = "result"
    """Zixflow's answer to the final attempt, as JSON, when the message asked for it."""
    RECLAIMS = "reclaims"
    DUPLICATES = "duplicates"
    REPLAYS = "replays"
    REPLY = "reply"
    """The recipient's button reply, as JSON {id, title, at}."""


class EventField(StrEnum):
    """The fields of a status event hash (`Keys.event`)."""

    TYPE = "type"
    """message.sent, message.failed, message.canceled or message.replied."""
    JOB_ID = "job_id"
    URL = "url"
    CREATED_AT = "created_at"
    ATTEMPTS = "attempts"
    BODY = "body"
    """The JSON body, fixed at the first attempt so every retry sends the same bytes."""
    ERROR = "error"
    """Why the last attempt failed."""
