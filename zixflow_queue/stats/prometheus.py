"""A snapshot as Prometheus metric families: what GET /metrics exposes.

One snapshot per scrape, read from what every worker records in Redis: the numbers are the
whole deployment's, however many workers (or service processes) there are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from zixflow_queue.stats.derived import by_label, cumulative
from zixflow_queue.stats.snapshot import Histogram, Snapshot

PREFIX = "zixflow_queue_"
MESSAGE_OUTCOMES = ("sent", "failed", "canceled")
"""Final outcomes of a job, always exposed (0 until one happens) so that rates start at once."""
EVENT_OUTCOMES = ("delivered", "retry", "failed")
"""How a status event's post ended (worker/scripts/end_events.lua)."""


class SnapshotCollector(Collector):
    """The metric families of one snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Every family, counters first, then gauges, then histograms."""
        snapshot, counters = self._snapshot, self._snapshot.counters
        yield _labelled("messages_total", "Jobs by final outcome.", "outcome",
                        {name: counters.get(name, 0) for name in MESSAGE_OUTCOMES})  # fmt: skip
        yield _labelled("attempts_total", "HTTP attempts to Zixflow by outcome kind.", "outcome",
                        by_label(counters, "attempt:"))  # fmt: skip
        yield _counter("retries_total", "Attempts that ended in a retry.", counters.get("retry", 0))
        yield _counter("duplicates_total", "Sends that succeeded after the job was already sent.",
                       counters.get("duplicates", 0))  # fmt: skip
        yield _counter("reclaims_total", "Jobs taken over from a worker that stopped mid-send.",
                       counters.get("reclaims", 0))  # fmt: skip
        events = {name: counters.get(f"events:{name}", 0) for name in EVENT_OUTCOMES}
        yield _labelled("events_total", "Status event posts by how they ended.", "outcome", events)
        yield _labelled("replies_total", "Zixflow events received, by what became of them.",
                        "outcome", by_label(counters, "inbound:"))  # fmt: skip
        yield _labelled("deferrals_total", "Sends a rate limit put off, per sending phone id.",
                        "phone_id", snapshot.deferrals)  # fmt: skip
        yield from _gauges(snapshot)
        yield _histogram("send_duration_seconds", "How long each HTTP send to Zixflow took.",
                         snapshot.send_seconds)  # fmt: skip
        yield _histogram("latency_seconds", "From enqueue to sent, per job sent.",
                         snapshot.latency_seconds)  # fmt: skip


def _gauges(snapshot: Snapshot) -> Iterator[Metric]:
    values: Sequence[tuple[str, str, float]] = (
        ("waiting", "Jobs on the ready list, not yet taken by a worker.", snapshot.waiting),
        ("queue_items", "Delivery tasks (wake-ups) on the Celery queue.", snapshot.queue_items),
        ("scheduled", "Jobs waiting for their send time, a retry or a rate-limit slot.",
         snapshot.scheduled),
        ("in_flight", "Jobs live workers have taken and not finished.", snapshot.in_flight),
        ("workers", "Workers whose heartbeat is alive.", snapshot.workers),
        ("dead_letters", "Entries in the dead-letter store.", snapshot.dead_letters),
        ("events_pending", "Status events still to deliver.", snapshot.events_pending),
        ("events_failed", "Status events that failed for good.", snapshot.events_failed),
        ("oldest_waiting_seconds", "Age of the oldest job on the ready list (0: none waits).",
         snapshot.oldest_waiting_seconds or 0.0),
    )  # fmt: skip
    for name, documentation, value in values:
        yield GaugeMetricFamily(PREFIX + name, documentation, value=value)


def _counter(name: str, documentation: str, value: int) -> Metric:
    return CounterMetricFamily(PREFIX + name, documentation, value=value)


def _labelled(name: str, documentation: str, label: str, values: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, documentation, labels=[label])
    for value_label, value in sorted(values.items()):
        family.add_metric([value_label], value)
    return family


def _histogram(name: str, documentation: str, histogram: Histogram) -> Metric:
    label = floatToGoString  # how prometheus_client writes `le` itself: 0.25, 1.0, +Inf
    buckets = [(label(bound), count) for bound, count in cumulative(histogram)]  # type: ignore[no-untyped-call]
    return HistogramMetricFamily(
        PREFIX + name, documentation, buckets=buckets, sum_value=histogram.total
    )
