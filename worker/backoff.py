"""Retry timing as arithmetic: capped exponential backoff with full jitter, and Retry-After."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.outcomes import Outcome

# 2.0 ** 1024 overflows; past this exponent every delay is the cap anyway.
_MAX_EXPONENT = 1000


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt n (from 1): uniform in [0, min(cap, base·2ⁿ⁻¹)]."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a Retry-After value asks for (delta-seconds or HTTP-date); None for garbage."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until(value, time.time() if now is None else now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000" parses naive; HTTP dates are always GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def retry_delay(
    outcome: Outcome,
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    max_retry_after: float = math.inf,
) -> float:
    """The backoff for this attempt, but never sooner than Retry-After (even past the cap).

    A Retry-After beyond `max_retry_after` (a far-off date, a typo) is taken as that long.
    """
    delay = backoff_delay(attempt, base=base, cap=cap, rng=rng)
    return max(delay, min(outcome.retry_after or 0.0, max_retry_after))
