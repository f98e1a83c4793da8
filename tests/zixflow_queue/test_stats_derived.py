"""Figures every view derives from a snapshot: cumulative buckets, quantiles, recent rates."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.zixflow_queue.test_metrics import QUIET
from zixflow_queue.stats import Histogram
from zixflow_queue.stats.derived import by_label, cumulative, quantile, recent_rates

INF = float("inf")
# 10 measurements: 4 up to 0.1 s, 4 from 0.1 to 0.5 s, 2 beyond 1 s.
SPREAD = Histogram({0.1: 4, 0.5: 4, 1.0: 0, INF: 2}, total=9.0, count=10)


def test_buckets_add_up_and_inf_holds_the_count() -> None:
    assert cumulative(SPREAD) == [(0.1, 4), (0.5, 8), (1.0, 8), (INF, 10)]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.2, 0.05),  # rank 2 of the 4 in (0, 0.1]: halfway
        (0.5, 0.1 + 0.4 * 0.25),  # rank 5: the first of the 4 in (0.1, 0.5]
        (0.8, 0.5),  # rank 8: the top of (0.1, 0.5]
        (0.95, 1.0),  # in +Inf: the last finite bound, as Prometheus answers
    ],
)
def test_quantiles_interpolate_within_their_bucket(q: float, expected: float) -> None:
    assert quantile(SPREAD, q) == pytest.approx(expected)


def test_no_measurements_no_quantile() -> None:
    assert quantile(Histogram({1.0: 0, INF: 0}), 0.5) is None


def test_rates_cover_the_last_minute_and_the_slot_so_far() -> None:
    # Slots of 10 s up to the current one (started at 990, now 995): 7 slots, 65 s in all.
    series = [(float(start), 13, 1) for start in range(700, 1000, 10)]
    snapshot = replace(QUIET, at=995.0, series=series)
    assert recent_rates(snapshot) == pytest.approx((7 * 13 / 65, 7 / 65))


def test_counters_by_label() -> None:
    counters = {"attempt:sent": 3, "attempt:throttled": 1, "sent": 3}
    assert by_label(counters, "attempt:") == {"sent": 3, "throttled": 1}
