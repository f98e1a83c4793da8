"""Backoff arithmetic and Retry-After parsing, with a seeded generator."""

from __future__ import annotations

import email.utils
import random
import statistics

import pytest

from worker.backoff import backoff_delay, parse_retry_after, retry_delay
from worker.outcomes import Outcome, OutcomeKind

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 GMT
DRAWS = 500


@pytest.mark.parametrize("attempt", range(1, 13))
def test_delay_within_bounds(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))

    delays = [backoff_delay(attempt, base=0.5, cap=60.0, rng=rng) for _ in range(DRAWS)]

    assert all(0.0 <= delay <= ceiling for delay in delays)
    assert max(delays) > 0.9 * ceiling  # the whole range is used, up to the ceiling


@pytest.mark.parametrize("attempt", [20, 64, 1100, 100_000])
def test_cap_holds_for_any_attempt(attempt: int) -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempt, base=1.0, cap=300.0, rng=rng) for _ in range(DRAWS)]
    assert max(delays) <= 300.0
    assert max(delays) > 250.0


def test_full_jitter_spreads_delays() -> None:
    rng = random.Random(42)
    delays = [backoff_delay(5, base=1.0, cap=300.0, rng=rng) for _ in range(2000)]
    assert len(set(delays)) == len(delays)
    assert min(delays) < 1.0
    assert 7.0 < statistics.mean(delays) < 9.0  # uniform on [0, 16]


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (5, 4.0), (6, 5.0), (7, 5.0), (30, 5.0)],
)
def test_ceiling_doubles_per_attempt_until_the_cap(attempt: int, ceiling: float) -> None:
    rng = random.Random(1000 + attempt)
    delays = [backoff_delay(attempt, base=0.25, cap=5.0, rng=rng) for _ in range(DRAWS)]
    assert 0.0 <= min(delays) < 0.1 * ceiling
    assert 0.9 * ceiling < max(delays) <= ceiling


def test_same_seed_same_delays() -> None:
    first, second = random.Random(3), random.Random(3)
    assert [backoff_delay(n, base=1, cap=30, rng=first) for n in range(1, 9)] == [
        backoff_delay(n, base=1, cap=30, rng=second) for n in range(1, 9)
    ]


def test_attempt_counts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0, base=1.0, cap=10.0, rng=random.Random(0))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Tue, 14 Nov 2023 22:14:00 -0000", 40.0),  # a date without zone info, read as GMT
        ("Tue, 14 Nov 2023 23:14:00 +0100", 40.0),
        ("2.75", 2.75),
        (None, None),
        ("", None),
        ("   ", None),
        ("12 seconds", None),
        ("Wed, 21 Oct 2015", None),
        ("soon", None),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 99 Foo 2015", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_uses_the_clock_by_default() -> None:
    parsed = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert parsed is not None and parsed > 365 * 24 * 3600


def outcome_asking(retry_after: float | None) -> Outcome:
    return Outcome(OutcomeKind.THROTTLED, "HTTP 429: slow down", 429, retry_after=retry_after)


@pytest.mark.parametrize("retry_after", [None, 0.0, 0.001])
def test_retry_delay_is_the_backoff_when_it_is_later(retry_after: float | None) -> None:
    expected = backoff_delay(4, base=1.0, cap=30.0, rng=random.Random(11))
    delay = retry_delay(outcome_asking(retry_after), 4, base=1.0, cap=30.0, rng=random.Random(11))
    assert delay == expected > 0.001


def test_retry_delay_never_sooner_than_retry_after() -> None:
    rng = random.Random(5)
    delays = [retry_delay(outcome_asking(3.0), 3, base=1.0, cap=30.0, rng=rng) for _ in range(200)]
    assert min(delays) == 3.0
    assert max(delays) > 3.0  # a later backoff still wins


@pytest.mark.parametrize("attempt", [1, 5, 50])
def test_retry_after_beyond_the_cap_is_honoured(attempt: int) -> None:
    rng = random.Random(1)
    delays = {
        retry_delay(outcome_asking(900.0), attempt, base=1.0, cap=60.0, rng=rng) for _ in range(50)
    }
    assert delays == {900.0}


def test_retry_delay_without_retry_after_stays_within_the_cap() -> None:
    rng = random.Random(9)
    outcome = Outcome(OutcomeKind.TRANSIENT, "HTTP 500: later", 500)
    delays = [retry_delay(outcome, 40, base=1.0, cap=60.0, rng=rng) for _ in range(DRAWS)]
    assert max(delays) <= 60.0
    assert len(set(delays)) == DRAWS


def test_retry_after_beyond_the_ceiling_is_taken_as_the_ceiling() -> None:
    two_days = outcome_asking(2 * 86_400.0)
    delay = retry_delay(two_days, 1, base=1.0, cap=60.0, rng=random.Random(3), max_retry_after=600)
    assert delay == 600.0
