"""One reading of a deployment's numbers: the source of /metrics, the dashboard and `stats`.

Every worker adds to the same counters, histograms and series (see producer.metrics), so one
reading covers the whole deployment, however many workers run. It is one Lua call, plus the
length of the Celery queue when the broker is another Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio

from producer import metrics
from producer.settings import ProducerSettings
from producer.store import script_source

SERIES_SLOTS = 30
"""Slots of `Keys.series` in a reading: the last five minutes, 10 s each."""


@dataclass(frozen=True)
class Histogram:
    """A duration histogram: counts per bucket upper bound (not cumulative), sum and count."""

    buckets: dict[float, int]
    """Upper bound (inf for the last) → how many measurements fell in that bucket."""
    total: float = 0.0
    count: int = 0

    @classmethod
    def from_hash(cls, flat: Sequence[str], bounds: Sequence[float]) -> Histogram:
        """Read a histogram hash (`bound → count`, `sum`, `count`) as a flat list."""
        values = dict(zip(flat[::2], flat[1::2], strict=True))
        buckets = {bound: int(values.get(_bound_name(bound), 0)) for bound in bounds}
        buckets[float("inf")] = int(values.get("+Inf", 0))
        return cls(buckets, float(values.get("sum", 0)), int(values.get("count", 0)))


@dataclass(frozen=True)
class Snapshot:
    """A deployment's numbers at one moment."""

    at: float
    counters: dict[str, int]
    """Everything workers count: sent, failed, retry, canceled, duplicates, reclaims,
    `attempt:<outcome kind>`, `events:<delivered|retry|failed>`, `inbound:<outcome>`."""
    waiting: int
    """Jobs on the ready list, not yet taken by a worker."""
    queue_items: int
    """Delivery tasks (wake-ups) on the Celery queue."""
    scheduled: int
    """Jobs waiting for their send time, a retry or a rate-limit slot."""
    in_flight: int
    """Jobs live workers have taken and not finished (waiting for a place, or sending)."""
    workers: int
    """Workers whose heartbeat is alive."""
    dead_letters: int
    events_pending: int
    """Status events still to deliver (ready, retrying, or being posted)."""
    events_failed: int
    deferrals: dict[str, int]
    """Sends a rate limit put off, per sending phone id."""
    send_seconds: Histogram
    latency_seconds: Histogram
    oldest_waiting_seconds: float | None
    """How long the oldest job on the ready list has waited since it was enqueued."""
    series: list[tuple[float, int, int]] = field(default_factory=list)
    """(slot start, sent, failed) for the last SERIES_SLOTS slots of 10 s."""


class SnapshotReader:
    """Reads snapshots of one deployment, from synchronous or asyncio code."""

    def __init__(self, settings: ProducerSettings) -> None:
        keys = settings.keys
        self._queue = settings.queue
        self._keys = [keys.stats, keys.ready, keys.schedule, keys.workers, keys.dead_index,
                      keys.events_ready, keys.events_schedule, keys.events_dead,
                      keys.deferrals]  # fmt: skip
        self._args: list[str | int] = [keys.held.prefix, keys.events_held.prefix, keys.job.prefix,
                      keys.histogram.prefix, keys.series.prefix, metrics.SERIES_SLOT,
                      SERIES_SLOTS]  # fmt: skip
        self._source = script_source("zixflow_queue.stats.scripts", "snapshot")

    def read(self, records: redis.Redis, broker: redis.Redis) -> Snapshot:
        """A snapshot, read with redis-py."""
        reply = records.register_script(self._source)(keys=self._keys, args=self._args)
        return _snapshot(reply, int(broker.llen(self._queue)))

    async def read_async(
        self, records: redis.asyncio.Redis, broker: redis.asyncio.Redis
    ) -> Snapshot:
        """A snapshot, read with redis.asyncio."""
        script = records.register_script(self._source)
        reply = await script(keys=self._keys, args=self._args)
        return _snapshot(reply, int(await broker.llen(self._queue)))


def _snapshot(reply: list[Any], queue_items: int) -> Snapshot:
    (now, counters, waiting, scheduled, in_flight, workers, dead, events_pending, events_failed,
     deferrals, send, latency, created, series) = reply  # fmt: skip
    at = float(now)
    return Snapshot(
        at=at,
        counters=_counts(counters),
        waiting=int(waiting),
        queue_items=queue_items,
        scheduled=int(scheduled),
        in_flight=int(in_flight),
        workers=int(workers),
        dead_letters=int(dead),
        events_pending=int(events_pending),
        events_failed=int(events_failed),
        deferrals=_counts(deferrals),
        send_seconds=Histogram.from_hash(send, metrics.SEND_SECONDS_BUCKETS),
        latency_seconds=Histogram.from_hash(latency, metrics.LATENCY_SECONDS_BUCKETS),
        oldest_waiting_seconds=at - float(created) if created else None,
        series=_series(series),
    )


def _series(flat: Sequence[str]) -> list[tuple[float, int, int]]:
    return [(float(flat[i]), int(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)]


def _counts(flat: Sequence[str]) -> dict[str, int]:
    return {name: int(float(value)) for name, value in zip(flat[::2], flat[1::2], strict=True)}


def _bound_name(bound: float) -> str:
    """A bucket's field name, as Lua's tostring writes it (1.0 → '1', 0.25 → '0.25')."""
    return f"{bound:g}"
