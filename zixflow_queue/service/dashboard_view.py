"""A snapshot as the dashboard shows it: labelled counts in groups, live rates, text formats."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from producer.metrics import SERIES_SLOT
from zixflow_queue.stats import Snapshot
from zixflow_queue.stats.derived import quantile, recent_rates

MESSAGES = (
    ("sent", "Sent", "good"),
    ("failed", "Failed", "bad"),
    ("canceled", "Canceled", ""),
    ("retry", "Retries", ""),
    ("duplicates", "Duplicates", ""),
    ("reclaims", "Reclaims", ""),
)
"""Counters of messages: key, label, tone (the colour of sent and failed)."""
RATE_WINDOW = 60.0
"""Seconds over which the headline rates are averaged."""
NONE = "\N{EN DASH}"
"""Shown for a value that does not exist yet (no measurement, no time)."""


@dataclass(frozen=True)
class Count:
    """One number on the overview; `key` names it in the live JSON and the page."""

    key: str
    label: str
    value: str
    tone: str = ""


@dataclass(frozen=True)
class Group:
    """Counts shown together under a title."""

    title: str
    counts: list[Count]


def groups(snapshot: Snapshot) -> list[Group]:
    """Every count of the snapshot, grouped as the overview shows them (empty groups left out)."""
    counters = snapshot.counters
    sent, failed = recent_rates(snapshot, RATE_WINDOW)
    found = [
        Group("Right now", [
            Count("sent_rate", "Sent per second", rate(sent), "good"),
            Count("failed_rate", "Failed per second", rate(failed), "bad"),
            Count("send_p50", "Send time p50", seconds(quantile(snapshot.send_seconds, 0.5))),
            Count("latency_p95", "Enqueued to sent p95",
                  seconds(quantile(snapshot.latency_seconds, 0.95))),
        ]),
        Group("Messages", [Count(key, label, number(counters.get(key, 0)), tone)
                           for key, label, tone in MESSAGES]),
        Group("Backlog", [
            Count("waiting", "Waiting", number(snapshot.waiting)),
            Count("scheduled", "Scheduled", number(snapshot.scheduled)),
            Count("in_flight", "In flight", number(snapshot.in_flight)),
            Count("oldest_waiting", "Oldest waiting", seconds(snapshot.oldest_waiting_seconds)),
            Count("workers", "Workers", number(snapshot.workers)),
            Count("queue_items", "Wake-ups queued", number(snapshot.queue_items)),
        ]),
        Group("Dead letters and status events", [
            Count("dead_letters", "Dead letters", number(snapshot.dead_letters),
                  "bad" if snapshot.dead_letters else ""),
            Count("events_pending", "Events pending", number(snapshot.events_pending)),
            Count("events_failed", "Events failed", number(snapshot.events_failed),
                  "bad" if snapshot.events_failed else ""),
        ]),
        Group("Attempts by outcome", _prefixed(counters, "attempt:")),
        Group("Events by ending", _prefixed(counters, "events:")),
        Group("Replies received", _prefixed(counters, "inbound:")),
        Group("Deferred by a rate limit, per phone id", [
            Count(f"deferrals:{phone_id}", phone_id, number(count))
            for phone_id, count in sorted(snapshot.deferrals.items())
        ]),
    ]  # fmt: skip
    return [group for group in found if group.counts]


def live(snapshot: Snapshot) -> dict[str, Any]:
    """What the overview's script refreshes: every count by key, and the rates per slot."""
    return {
        "at": snapshot.at,
        "counts": {count.key: count.value for group in groups(snapshot) for count in group.counts},
        "rates": slot_rates(snapshot),
    }


def slot_rates(snapshot: Snapshot) -> list[list[float]]:
    """[slot start, sent per second, failed per second] per slot; the current one so far."""
    rates = []
    for slot, sent, failed in snapshot.series:
        span = min(max(snapshot.at - slot, 1.0), SERIES_SLOT)
        rates.append([slot, round(sent / span, 2), round(failed / span, 2)])
    return rates


def number(value: int) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def rate(per_second: float) -> str:
    """A rate per second, to a tenth."""
    return f"{per_second:,.1f}"


def seconds(value: float | None) -> str:
    """A duration: ms below a second, s below two minutes, then minutes; a dash for none."""
    if value is None:
        return NONE
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:,.0f} min"


def moment(value: float | datetime | None) -> str:
    """A time in UTC, to the second; a dash for none."""
    if value is None:
        return NONE
    at = value.timestamp() if isinstance(value, datetime) else value
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def label(name: str) -> str:
    """A counter's name as a label: `retry_after` → `Retry after`."""
    return name.replace("_", " ").replace("-", " ").capitalize()


def _prefixed(counters: Mapping[str, int], prefix: str) -> list[Count]:
    return [
        Count(name, label(name.removeprefix(prefix)), number(value))
        for name, value in sorted(counters.items())
        if name.startswith(prefix)
    ]
