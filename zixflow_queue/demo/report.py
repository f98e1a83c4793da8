"""What the demo shows: a progress bar while jobs finish, then a summary table."""

from __future__ import annotations

import sys
from collections import Counter
from statistics import quantiles
from typing import TextIO

from producer.status import JobState, JobStatus


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


def summary(statuses: list[JobStatus], started: float, expected: int) -> str:
    """The closing table: outcomes, failures by reason, retries, latency and throughput."""
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
    if len(finished) < expected:
        rows.append(("NOT FINISHED", f"{expected - len(finished)}"))
    width = max(len(name) for name, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join([rule, *lines, rule])


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
