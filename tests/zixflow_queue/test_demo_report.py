"""The demo's summary table and progress bar, from statuses made up here."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from producer.status import JobState, JobStatus
from tests.support import table_rows
from zixflow_queue.demo.report import ProgressBar, summary

START = 1_800_000_000.0
WINDOW = "HTTP 400: (#131047) Re-engagement message :: Message failed to send because..."


def status(
    n: int, state: JobState, attempts: int, took: float, error: str | None = None,
    reply: str | None = None,
) -> JobStatus:  # fmt: skip
    created = datetime.fromtimestamp(START, UTC)
    done = datetime.fromtimestamp(START + took, UTC)
    tapped = {"id": f"button-{n}", "title": reply, "at": done.isoformat()} if reply else None
    return JobStatus(
        job_id=f"job-{n}", state=state, attempts=attempts, result=None, error=error,
        created_at=created, updated_at=done, sent_at=done if state is JobState.SENT else None,
        reply=tapped,
    )  # fmt: skip


def test_summary_counts_outcomes_groups_failures_and_measures_latency() -> None:
    statuses = [status(n, JobState.SENT, 1, 0.1 * (n + 1)) for n in range(8)]
    statuses += [status(8, JobState.SENT, 3, 2.0)]
    statuses += [status(9, JobState.FAILED, 1, 0.5, WINDOW)]
    table = table_rows(summary(statuses, START, expected=10))
    assert (table["messages"], table["sent"], table["failed"]) == ("10", "9", "1")
    assert table["HTTP 400: (#131047) Re-engagement message"] == "1"
    assert table["retried (more than one attempt)"] == "1 jobs"
    assert table["HTTP attempts"] == "12"
    assert table["latency p50 / p95 (enqueued to done)"] == "500 ms / 1,460 ms"
    assert table["all done after"] == "2.0 s (retry waits included)"
    assert table["throughput"] == "5.0 messages/s"
    assert "NOT FINISHED" not in table


def test_summary_counts_replies_by_title_and_the_events_the_app_received() -> None:
    titles = ["Yes", "Another day", "Yes", None, None]
    statuses = [status(n, JobState.SENT, 1, 1.0, reply=title) for n, title in enumerate(titles)]
    events = {"message.replied": 3, "message.sent": 5, "invalid": 1}
    table = table_rows(summary(statuses, START, expected=5, events=events))
    assert table["replies (buttons tapped)"] == "3"
    assert (table["Yes"], table["Another day"]) == ("2", "1")
    assert (table["status events delivered"], table["message.sent"]) == ("8", "5")
    assert table["message.replied"] == "3"
    assert table["refused (signature did not verify)"] == "1"
    lines = summary(statuses, START, expected=5, events=events).splitlines()
    order = [line.split()[0] for line in lines if line.startswith("  message.")]
    assert order == ["message.sent", "message.replied"]  # in the order events happen
    assert "replies (buttons tapped)" not in summary(statuses, START, expected=5)


def test_summary_says_when_jobs_did_not_finish() -> None:
    statuses = [status(0, JobState.SENT, 1, 1.0), status(1, JobState.RETRYING, 2, 0.0)]
    assert table_rows(summary(statuses, START, expected=3))["NOT FINISHED"] == "2"


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        (0, "[----------] 0/4 done: 0 sent, 0 failed"),
        (3, "[#######---] 3/4 done: 2 sent, 1 failed"),
    ],
)
def test_progress_bar_off_a_terminal_prints_whole_lines(done: int, expected: str) -> None:
    stream = io.StringIO()
    statuses = [status(0, JobState.SENT, 1, 1.0), status(1, JobState.SENT, 1, 1.0),
                status(2, JobState.FAILED, 1, 1.0, WINDOW)][:done]  # fmt: skip
    bar = ProgressBar(4, stream, width=10)
    bar.update(statuses)
    bar.update(statuses)  # the same tenth again: nothing more
    bar.close()
    assert stream.getvalue() == expected + "\n"
