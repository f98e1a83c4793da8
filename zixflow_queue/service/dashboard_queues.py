"""What waits, for the dashboard: the heads of the backlog, and the rate limits at work."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from producer.aio import AsyncProducer
from producer.status import JobStatus
from producer.store import storage_boundary

SHOWN = 25
"""Jobs shown from the head of the ready list and of the schedule each."""


@dataclass(frozen=True)
class Backlog:
    """The next jobs to go: the oldest on the ready list, the soonest on the schedule."""

    waiting: list[JobStatus]
    scheduled: list[JobStatus]


@dataclass(frozen=True)
class PhoneLimit:
    """A sending phone id's rate limit: sends it put off, and until when, if it still does."""

    phone_id: str
    deferrals: int
    deferred_until: float | None
    """The latest time a send was put off to, while that is still to come."""


async def backlog(producer: AsyncProducer) -> Backlog:
    """The SHOWN oldest waiting jobs, and the SHOWN scheduled jobs due first."""
    keys, records = producer.keys, producer.store.records
    with storage_boundary("read the backlog", writes=False):
        async with records.pipeline(transaction=False) as pipe:
            pipe.lrange(keys.ready, -SHOWN, -1)  # workers take from the right: oldest last
            pipe.zrange(keys.schedule, 0, SHOWN - 1)
            waiting, scheduled = await pipe.execute()
    statuses = await producer.get_statuses([*reversed(waiting), *scheduled])
    return Backlog(_known(statuses[: len(waiting)]), _known(statuses[len(waiting) :]))


async def phone_limits(
    producer: AsyncProducer, deferrals: Mapping[str, int], now: float
) -> list[PhoneLimit]:
    """Each phone id a rate limit held back, the most deferred first."""
    phone_ids = sorted(deferrals, key=lambda phone_id: (-deferrals[phone_id], phone_id))
    if not phone_ids:
        return []
    with storage_boundary("read the rate limits", writes=False):
        keys = [producer.keys.phone_deferred(phone_id) for phone_id in phone_ids]
        untils: list[str | None] = await producer.store.records.mget(keys)  # type: ignore[assignment]
    return [
        PhoneLimit(phone_id, deferrals[phone_id], _still_to_come(until, now))
        for phone_id, until in zip(phone_ids, untils, strict=True)
    ]


def _known(statuses: list[JobStatus | None]) -> list[JobStatus]:
    return [status for status in statuses if status is not None]


def _still_to_come(value: str | None, now: float) -> float | None:
    try:
        moment = float(value) if value else None
    except ValueError:
        return None
    return moment if moment is not None and moment > now else None
