"""Keeping Zixflow's events in Redis and putting each button reply on its job, atomically."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum

import redis.asyncio

from producer.settings import ProducerSettings
from producer.store import script_source
from zixflow_queue.replies.inbound import Inbound

RAW_LIMIT = 65536
"""Characters of an event kept as received; Zixflow's events are far smaller."""


class InboundField(StrEnum):
    """The fields of a kept Zixflow event (`Keys.inbound`); inbound.lua writes exactly these."""

    EVENT = "event"
    """The event as received (JSON, cut at RAW_LIMIT)."""
    KIND = "kind"
    OUTCOME = "outcome"
    """matched, unmatched, other or unknown."""
    JOB_ID = "job_id"
    RECEIVED_AT = "received_at"
    PHONE_ID = "phone_id"
    SENDER = "sender"
    BUTTON_ID = "button_id"
    TITLE = "title"


class InboundRecorder:
    """Stores each event once and matches button replies to the jobs that offered them."""

    def __init__(self, client: redis.asyncio.Redis, settings: ProducerSettings) -> None:
        self._client = client
        self._settings = settings
        self._keys = settings.keys
        self._script = client.register_script(script_source("zixflow_queue.replies.scripts",
                                                            "inbound"))  # fmt: skip

    async def record(self, raw: str, event: Inbound) -> str:
        """Keep the event; returns what became of it (matched, unmatched, duplicate...)."""
        keys, settings = self._keys, self._settings
        event_id = event.event_id or f"unreadable-{uuid.uuid4().hex}"
        at = event.at or datetime.now(UTC)
        reply = json.dumps({"id": event.button_id, "title": event.title, "at": at.isoformat()})
        outcome: str = await self._script(
            keys=[keys.inbound(event_id), keys.inbound_index, keys.stats, keys.events_ready],
            args=[event_id, repr(time.time()), settings.record_ttl, raw[:RAW_LIMIT], event.kind,
                  event.phone_id, event.sender, event.button_id, event.title, reply,
                  keys.offers.prefix, keys.job.prefix, keys.history.prefix,
                  settings.callback_url or "", keys.event.prefix],
        )  # fmt: skip
        return outcome
