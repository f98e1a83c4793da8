"""Figures derived from a snapshot, for every view of it: cumulative buckets, quantiles, rates."""

from __future__ import annotations

import math
from collections.abc import Mapping

from producer.metrics import SERIES_SLOT
from zixflow_queue.stats.snapshot import Histogram, Snapshot


def cumulative(histogram: Histogram) -> list[tuple[float, int]]:
    """(upper bound, measurements at or below it) per bucket, as Prometheus exposes them.

    The last bucket (+Inf) is the count, which is what Prometheus requires of it.
    """
    running, buckets = 0, []
    for bound in sorted(histogram.buckets):
        running += histogram.buckets[bound]
        buckets.append((bound, histogram.count if math.isinf(bound) else running))
    return buckets


def quantile(histogram: Histogram, q: float) -> float | None:
    """The q-quantile (0 < q < 1) estimated as Prometheus's histogram_quantile does: linearly
    within the bucket it falls in. None without measurements; past the last finite bound, that
    bound."""
    if histogram.count == 0:
        return None
    rank = q * histogram.count
    lower, below = 0.0, 0
    for bound, count in cumulative(histogram):
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def recent_rates(snapshot: Snapshot, seconds: float = 60.0) -> tuple[float, float]:
    """Jobs sent and failed per second over about the last `seconds` (whole 10 s slots, plus
    the current slot so far)."""
    if not snapshot.series:
        return 0.0, 0.0
    current = snapshot.series[-1][0]
    start = current - math.ceil(seconds / SERIES_SLOT) * SERIES_SLOT
    recent = [(sent, failed) for slot, sent, failed in snapshot.series if slot >= start]
    elapsed = max(snapshot.at - start, 1.0)
    return sum(s for s, _ in recent) / elapsed, sum(f for _, f in recent) / elapsed


def by_label(counters: Mapping[str, int], prefix: str) -> dict[str, int]:
    """The counters named `<prefix><label>` (`attempt:sent`, `inbound:matched`), by label."""
    return {name.removeprefix(prefix): value for name, value in counters.items()
            if name.startswith(prefix)}  # fmt: skip
