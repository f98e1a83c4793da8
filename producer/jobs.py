"""What a caller asks to send, checked and turned into the record fields a job is stored with."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

from pydantic_core import to_json

from producer.errors import FieldProblem, ValidationError
from producer.message import ReplyButtonMessage, parse_messages
from producer.record import Field
from producer.status import JobState
from producer.tracing import traceparent
from producer.validation import callback_url_problem, shown

MessageInput = Mapping[str, Any] | ReplyButtonMessage
SendAt = datetime | float | int
IDEMPOTENCY_KEY_MAX = 255


@dataclass(frozen=True, slots=True)
class Job:
    """A message to send, with when to send it and where to report what became of it."""

    message: MessageInput
    send_at: SendAt | None = None
    """An aware datetime or epoch seconds; a time past means now."""
    callback_url: str | None = None
    """Receives signed status events for this job (see the README's "Status events")."""
    trace: str | None = None
    """The W3C traceparent to store with it; by default, that of the span recording now."""


@dataclass(frozen=True, slots=True)
class NewJob:
    """A checked job about to be stored: its id, when it is due, and its record's fields."""

    job_id: str
    due: float | None
    """Its send time, when that is still to come; None to send now."""
    fields: dict[str, str]

    def arguments(self) -> list[str]:
        """This job's part of enqueue.lua's arguments: id, due, recipient, pair count, fields."""
        due = "" if self.due is None else repr(self.due)
        head = [self.job_id, due, self.fields[Field.TO], str(len(self.fields))]
        return [*head, *chain.from_iterable(self.fields.items())]


def as_jobs(items: Iterable[MessageInput | Job]) -> list[Job]:
    """Plain messages become jobs to send now."""
    return [item if isinstance(item, Job) else Job(item) for item in items]


def prepare(
    jobs: Sequence[Job], *, idempotency_key: str | None, record_ttl: int, public_callbacks: bool
) -> tuple[list[NewJob], str]:
    """Check every job (raising one ValidationError naming each bad one) and build its record.

    Returns the new jobs and the fingerprint of the whole request, which an idempotency key
    is bound to. Under a key, job ids derive from it, so a retry writes the same jobs again.
    """
    now = time.time()
    problems = _key_problems(idempotency_key)
    try:
        messages = parse_messages([job.message for job in jobs])
    except ValidationError as error:
        problems += error.problems
        messages = []
    dues = []
    for index, job in enumerate(jobs):
        due, found = _check_options(job, now, record_ttl, public_callbacks)
        problems += (FieldProblem(path, problem, index) for path, problem in found)
        dues.append(due)
    if problems:
        single = len(jobs) == 1
        problems.sort(key=lambda problem: -1 if problem.item is None else problem.item)
        raise ValidationError(
            FieldProblem(p.path, p.problem, None if single else p.item) for p in problems
        )
    wires = [message.to_wire_json() for message in messages]
    trace, created_at = traceparent(), repr(now)
    fingerprint = _fingerprint(jobs, wires) if idempotency_key else ""
    return [
        NewJob(job_id, due, _fields(message, wire, created_at, due, job, idempotency_key, trace))
        for job_id, job, message, wire, due in zip(
            new_job_ids(idempotency_key, len(jobs)), jobs, messages, wires, dues, strict=True
        )
    ], fingerprint


def _check_options(
    job: Job, now: float, record_ttl: int, public_callbacks: bool
) -> tuple[float | None, list[tuple[str, str]]]:
    """The job's send time (None for now), and the problems with its options."""
    problems = []
    due = None
    if job.send_at is not None:
        due, problem = _due(job.send_at, now, record_ttl)
        if problem:
            problems.append(("send_at", problem))
    if job.callback_url is not None:
        problem = callback_url_problem(job.callback_url, public_only=public_callbacks)
        if problem:
            problems.append(("callback_url", problem))
    return due, problems


def _due(send_at: object, now: float, record_ttl: int) -> tuple[float | None, str]:
    """The job's send time if it is still to come, or the problem with `send_at`."""
    if isinstance(send_at, datetime):
        if send_at.tzinfo is None or send_at.utcoffset() is None:
            return None, f"must be timezone-aware, got {send_at.isoformat()}"
        moment = send_at.timestamp()
    elif isinstance(send_at, int | float) and not isinstance(send_at, bool):
        moment = float(send_at)
        if not math.isfinite(moment):
            return None, f"must be a finite number of epoch seconds, got {send_at!r}"
    else:
        return None, f"must be a datetime or epoch seconds, got {shown(send_at)}"
    if moment > now + record_ttl:
        days = record_ttl / 86400
        return None, (
            f"must be within the record lifetime (ZQ_RECORD_TTL, {days:g} days) of now; "
            f"got {moment - now:.0f} seconds ahead"
        )
    return (moment if moment > now else None), ""


def _key_problems(key: str | None) -> list[FieldProblem]:
    problem = ""
    if key is None:
        return []
    if not key:
        problem = "must not be empty (leave it out for none)"
    elif len(key) > IDEMPOTENCY_KEY_MAX:
        problem = f"must be at most {IDEMPOTENCY_KEY_MAX} characters, got {len(key)}"
    elif not key.isprintable():
        problem = "must be printable text, without control characters"
    return [FieldProblem("idempotency_key", problem)] if problem else []


def _fields(
    message: ReplyButtonMessage,
    wire: str,
    created_at: str,
    due: float | None,
    job: Job,
    idempotency_key: str | None,
    trace: str | None,
) -> dict[str, str]:
    fields: dict[str, str] = {  # Field names are str: Redis and JSON take them as they are
        Field.STATE: JobState.QUEUED if due is None else JobState.SCHEDULED,
        Field.ATTEMPTS: "0",
        Field.MESSAGE: wire,
        Field.PHONE_ID: message.phone_id,
        Field.TO: message.to,
        Field.BUTTONS: to_json([b.reply.id for b in message.interactive.action.buttons]).decode(),
        Field.CREATED_AT: created_at,
    }
    if due is not None:
        fields[Field.SEND_AT] = fields[Field.DUE_AT] = repr(due)
    if job.callback_url:
        fields[Field.CALLBACK_URL] = job.callback_url
    if idempotency_key:
        fields[Field.IDEMPOTENCY_KEY] = idempotency_key
    if trace := job.trace or trace:
        fields[Field.TRACE] = trace
    return fields


def _fingerprint(jobs: Sequence[Job], wires: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for job, wire in zip(jobs, wires, strict=True):
        send_at = job.send_at.isoformat() if isinstance(job.send_at, datetime) else job.send_at
        digest.update(json.dumps([wire, send_at, job.callback_url]).encode())
    return digest.hexdigest()


def new_job_ids(idempotency_key: str | None, count: int) -> list[str]:
    """New jobs' ids: random, or derived from their idempotency key and their place in the call."""
    if idempotency_key is None:
        random = os.urandom(16 * count).hex()  # one read for all: a uuid4 each costs 2 us
        return [random[start : start + 32] for start in range(0, 32 * count, 32)]
    return [job_id_for(idempotency_key, index) for index in range(count)]


def job_id_for(idempotency_key: str, index: int) -> str:
    """The id of the job at `index` of the call made with this idempotency key."""
    return hashlib.sha256(f"{idempotency_key}\x00{index}".encode()).hexdigest()[:32]
