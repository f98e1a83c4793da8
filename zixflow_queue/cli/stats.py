"""`zixflow-queue stats`: the deployment's numbers, as /metrics counts them, for a person."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from producer.enqueue import default_producer
from zixflow_queue.cli.output import DONE, emit
from zixflow_queue.stats import Histogram, Snapshot, SnapshotReader
from zixflow_queue.stats.derived import by_label, quantile, recent_rates

QUANTILES = (0.5, 0.95)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `stats` to the command line."""
    stats = commands.add_parser(
        "stats", parents=[common], help="the deployment's numbers: backlog, outcomes, timings",
        description="The numbers GET /metrics exposes, across all workers: backlog, outcomes, "
        "the last minute's rates, send duration and latency percentiles (from the histograms).",
    )  # fmt: skip
    stats.set_defaults(handler=stats_command)


def stats_command(args: argparse.Namespace) -> int:
    """Read one snapshot and print it: a table, or one JSON object with --json."""
    producer = default_producer()
    snapshot = SnapshotReader(producer.settings).read(producer.store.records, producer.store.broker)
    emit(args, as_dict(snapshot), table(snapshot))
    return DONE


def as_dict(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot, JSON-ready, with rates and percentiles."""
    sent, failed = recent_rates(snapshot)
    return {
        "at": snapshot.at,
        "workers": snapshot.workers,
        "waiting": snapshot.waiting,
        "queue_items": snapshot.queue_items,
        "oldest_waiting_seconds": snapshot.oldest_waiting_seconds,
        "scheduled": snapshot.scheduled,
        "in_flight": snapshot.in_flight,
        "dead_letters": snapshot.dead_letters,
        "events_pending": snapshot.events_pending,
        "events_failed": snapshot.events_failed,
        "counters": snapshot.counters,
        "deferrals": snapshot.deferrals,
        "last_minute_per_second": {"sent": sent, "failed": failed},
        "send_duration_seconds": _summary(snapshot.send_seconds),
        "latency_seconds": _summary(snapshot.latency_seconds),
    }


def table(snapshot: Snapshot) -> str:
    """Two columns: what, and how many."""
    counters = snapshot.counters
    sent, failed = recent_rates(snapshot)
    rows = [
        ("workers alive", f"{snapshot.workers}"),
        ("waiting", f"{snapshot.waiting:,} jobs in {snapshot.queue_items:,} queue items"),
        ("oldest waiting", _duration(snapshot.oldest_waiting_seconds)),
        ("scheduled", f"{snapshot.scheduled:,}"),
        ("in flight", f"{snapshot.in_flight:,}"),
        ("sent / failed / canceled", " / ".join(
            f"{counters.get(name, 0):,}" for name in ("sent", "failed", "canceled"))),
        ("last minute", f"{sent:,.1f} sent/s, {failed:,.1f} failed/s"),
        ("retries", f"{counters.get('retry', 0):,}"),
        ("HTTP attempts", _breakdown(counters, "attempt:")),
        ("duplicates / reclaims",
         f"{counters.get('duplicates', 0):,} / {counters.get('reclaims', 0):,}"),
        ("dead letters", f"{snapshot.dead_letters:,}"),
        ("status events", f"{snapshot.events_pending:,} pending, {snapshot.events_failed:,} "
         f"failed for good; posts {_breakdown(counters, 'events:')}"),
        ("replies", _breakdown(counters, "inbound:")),
        ("rate-limit deferrals", _listing(snapshot.deferrals)),
        ("send duration p50 / p95", _percentiles(snapshot.send_seconds)),
        ("latency p50 / p95 (enqueued to sent)", _percentiles(snapshot.latency_seconds)),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _summary(histogram: Histogram) -> dict[str, float | int | None]:
    return {
        "count": histogram.count,
        "sum": histogram.total,
        **{f"p{round(q * 100)}": quantile(histogram, q) for q in QUANTILES},
    }


def _percentiles(histogram: Histogram) -> str:
    return " / ".join(_duration(quantile(histogram, q)) for q in QUANTILES)


def _breakdown(counters: Mapping[str, int], prefix: str) -> str:
    """'357: sent 283, transient 74' for the counters named `prefix<label>`."""
    parts = by_label(counters, prefix)
    return f"{sum(parts.values()):,}" + (f": {_listing(parts)}" if parts else "")


def _listing(counts: Mapping[str, int]) -> str:
    """'a 3, b 1', largest first; '-' for none."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {count:,}" for name, count in ranked) or "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.1f} s"
