"""The Zixflow events the service kept, read back newest first (for the CLI and the dashboard)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import redis

from producer.keys import Keys
from producer.store import storage_boundary
from zixflow_queue.indexed import hashes, newest
from zixflow_queue.replies.recorder import InboundField

OUTCOMES = ("matched", "unmatched", "other", "unknown")
"""What became of a kept event (a duplicate is counted, not kept again)."""
PAGE = 200
"""Events read per round trip while looking for those of one outcome."""


@dataclass(frozen=True, slots=True)
class KeptEvent:
    """One event from Zixflow, and what became of it."""

    event_id: str
    received_at: float
    outcome: str
    kind: str
    phone_id: str
    sender: str
    button_id: str
    title: str
    job_id: str
    event: str
    """The event as received (JSON text, cut at 64 KiB)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


class KeptEvents:
    """The Zixflow events a deployment kept, from `Keys.inbound_index` (sync redis-py)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def latest(self, *, outcome: str | None = None, limit: int = 50) -> list[KeptEvent]:
        """Up to `limit` events, newest first, of one outcome or any; expired ones left out."""
        found: list[KeptEvent] = []
        start = 0
        with storage_boundary("list the Zixflow events", writes=False):
            while len(found) < limit:
                size = limit if outcome is None else PAGE
                ranked = newest(self._client, self._keys.inbound_index, start, size)
                events = [_kept(*read) for read in hashes(self._client, self._keys.inbound, ranked)]
                found += [e for e in events if outcome is None or e.outcome == outcome]
                if len(ranked) < size:
                    break
                start += size
        return found[:limit]


def _kept(event_id: str, received_at: float, fields: dict[str, str]) -> KeptEvent:
    def field(name: InboundField) -> str:
        return fields.get(name, "")

    return KeptEvent(
        event_id=event_id, received_at=received_at, outcome=field(InboundField.OUTCOME),
        kind=field(InboundField.KIND), phone_id=field(InboundField.PHONE_ID),
        sender=field(InboundField.SENDER), button_id=field(InboundField.BUTTON_ID),
        title=field(InboundField.TITLE), job_id=field(InboundField.JOB_ID),
        event=field(InboundField.EVENT),
    )  # fmt: skip
