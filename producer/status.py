"""Job states, and the status a producer reads from a job record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from producer.record import Field


class JobState(StrEnum):
    """Where a job is: (scheduled →) queued → sending → retrying → sent | failed | canceled."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        """Whether the job is finished for good."""
        return self in _FINAL


_FINAL = frozenset({JobState.SENT, JobState.FAILED, JobState.CANCELED})


@dataclass(frozen=True, slots=True)
class JobStatus:
    """What a producer sees when it polls a job."""

    job_id: str
    state: JobState
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    reply: dict[str, Any] | None = None
    """The recipient's button reply: {"id", "title", "at"}."""
    to: str | None = None
    phone_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    send_at: datetime | None = None
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    reclaims: int = 0
    """Times a worker that died mid-send had the job taken over (it may have gone out twice)."""
    duplicates: int = 0
    """Sends recorded after the job had already been sent."""
    replays: int = 0

    @property
    def final(self) -> bool:
        """Whether the job is finished (sent, failed or canceled)."""
        return self.state.final

    @classmethod
    def from_record(cls, job_id: str, record: Mapping[str, str]) -> JobStatus:
        """Read a record hash (as decoded strings) into a status."""
        state = JobState(record[Field.STATE])
        return cls(
            job_id=job_id,
            state=state,
            attempts=_count(record.get(Field.ATTEMPTS)),
            result=_json_object(record.get(Field.RESULT)),
            error=record.get(Field.ERROR) or None,
            reply=_json_object(record.get(Field.REPLY)),
            to=record.get(Field.TO),
            phone_id=record.get(Field.PHONE_ID),
            created_at=_timestamp(record.get(Field.CREATED_AT)),
            updated_at=_timestamp(record.get(Field.UPDATED_AT)),
            send_at=_timestamp(record.get(Field.SEND_AT)),
            sent_at=_timestamp(record.get(Field.SENT_AT)),
            next_attempt_at=None if state.final else _timestamp(record.get(Field.DUE_AT)),
            reclaims=_count(record.get(Field.RECLAIMS)),
            duplicates=_count(record.get(Field.DUPLICATES)),
            replays=_count(record.get(Field.REPLAYS)),
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (timestamps as ISO 8601)."""
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in ((name, getattr(self, name)) for name in self.__dataclass_fields__)
        }


def _count(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _timestamp(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC) if value else None
    except (ValueError, OverflowError, OSError):  # a damaged record still has a status
        return None


def _json_object(value: str | None) -> dict[str, Any] | None:
    try:
        decoded = json.loads(value) if value else None
    except (ValueError, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None
