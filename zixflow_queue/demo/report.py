"""What the demo shows: a progress bar while jobs finish, then a summary table."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from statistics import quantiles
from typing import TextIO

from producer.status import JobState, JobStatus
from zixflow_queue.demo.receiver import INVALID

EVENT_TYPES = ("message.sent", "message.failed", "message.canceled", "message.replied")


class ProgressBar:
    """One line on stderr, redrawn in place on a terminal (a line per tenth done otherwise)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 40) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.width = width
        self._live = stream.isatty()
        self._shown = -1

    def update(self, statuses: list[JobStatus]) -> None:
        """Redraw for these statuses."""
        states = Counter(status.state for status in statuses)
        done = states[JobState.SENT] + states[JobState.FAILED]
        step = 10 * done // self.total
        if not self._live and step == self._shown:
            return
        self._shown = step
        filled = self.width * done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        sent, failed = states[JobState.SENT], states[JobState.FAILED]
        line = f"[{bar}] {done}/{self.total} done: {sent} sent, {failed} failed"
        print(f"\r{line}" if self._live else line, end="" if self._live else "\n",
              file=self.stream, flush=True)  # fmt: skip

    def close(self) -> None:
        """End the bar's line."""
        if self._live:
            print(file=self.stream, flush=True)


def summary(
    statuses: list[JobStatus],
    started: float,
    expected: int,
    events: Mapping[str, int] | None = None,
) -> str:
    """The closing table: outcomes, failures by reason, retries, latency and throughput; with
    the status events an app received (by type), the replies by button title and those events."""
    finished = [s for s in statuses if s.final]
    failed = Counter(_reason(s.error) for s in finished if s.state is JobState.FAILED)
    ends = {s.job_id: _end(s) for s in finished}
    latencies = sorted(
        (ends[s.job_id] - s.created_at.timestamp()) * 1000 for s in finished if s.created_at
    )
    p50, p95 = _percentiles(latencies)
    elapsed = max(ends.values(), default=started) - started
    rows = [
        ("messages", f"{expected}"),
        ("sent", f"{sum(s.state is JobState.SENT for s in finished)}"),
        ("failed", f"{sum(failed.values())}"),
        *((f"  {reason}", f"{count}") for reason, count in failed.most_common()),
        ("retried (more than one attempt)", f"{sum(s.attempts > 1 for s in statuses)} jobs"),
        ("HTTP attempts", f"{sum(s.attempts for s in statuses)}"),
        ("latency p50 / p95 (enqueued to done)", f"{p50:,.0f} ms / {p95:,.0f} ms"),
        ("all done after", f"{elapsed:.1f} s (retry waits included)"),
        ("throughput", f"{_figure(len(finished) / max(elapsed, 1e-3))} messages/s"),
    ]
    if events is not None:
        rows += _reply_rows(statuses) + _event_rows(events)
    if len(finished) < expected:
        rows.append(("NOT FINISHED", f"{expected - len(finished)}"))
    width = max(len(name) for name, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join([rule, *lines, rule])


def _reply_rows(statuses: list[JobStatus]) -> list[tuple[str, str]]:
    """The recipients' replies on the jobs, by button title."""
    titles = Counter(str(s.reply.get("title")) for s in statuses if s.reply)
    rows = [("replies (buttons tapped)", f"{sum(titles.values())}")]
    return rows + [(f"  {title}", f"{count}") for title, count in titles.most_common()]


def _event_rows(events: Mapping[str, int]) -> list[tuple[str, str]]:
    """Status events the app received and verified, by type; those refused, if any."""
    verified = {kind: count for kind, count in events.items() if kind != INVALID}
    rows = [("status events delivered", f"{sum(verified.values())}")]
    rows += [(f"  {kind}", f"{verified[kind]}") for kind in sorted(verified, key=_event_order)]
    if events.get(INVALID):
        rows.append(("  refused (signature did not verify)", f"{events[INVALID]}"))
    return rows


def _event_order(kind: str) -> tuple[int, str]:
    return (EVENT_TYPES.index(kind) if kind in EVENT_TYPES else len(EVENT_TYPES), kind)


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _end(status: JobStatus) -> float:
    moment = status.sent_at or status.updated_at or status.created_at
    return moment.timestamp() if moment else 0.0


def _reason(error: str | None) -> str:
    """Zixflow's message up to its detail: 'HTTP 400: (#131047) Re-engagement message'."""
    head = (error or "no reason recorded").split(" :: ")[0]
    return head if len(head) <= 60 else head[:57] + "..."


def _percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    cuts = quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]
