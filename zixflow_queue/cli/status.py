"""The commands that follow jobs: `status` shows them, `cancel` stops those not yet sending."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from producer.enqueue import default_producer
from producer.record import is_job_id
from producer.status import JobState, JobStatus
from zixflow_queue.cli.output import DONE, FAILED, emit, note

MOMENTS: dict[JobState, tuple[str, Callable[[JobStatus], datetime | None]]] = {
    JobState.SCHEDULED: ("due", lambda status: status.send_at),
    JobState.RETRYING: ("next_attempt", lambda status: status.next_attempt_at),
    JobState.SENT: ("sent", lambda status: status.sent_at),
    JobState.FAILED: ("failed", lambda status: status.updated_at),
    JobState.CANCELED: ("canceled", lambda status: status.updated_at),
}
"""The time a status line shows for a state, and its label."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `status` and `cancel` to the command line."""
    status = commands.add_parser(
        "status", parents=[common], help="show jobs' status",
        description="Show each job's state. Exit code 1 when a job is unknown or failed.",
    )  # fmt: skip
    status.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    status.add_argument("--wait", action="store_true",
                        help="until every job is sent, failed or canceled")  # fmt: skip
    status.add_argument("--timeout", type=float, default=60.0, help="seconds --wait waits at most")
    status.set_defaults(handler=status_command)

    cancel = commands.add_parser(
        "cancel", parents=[common], help="cancel jobs that have not started sending",
        description="Cancel jobs that have not started sending: they are never sent. Prints "
        "each job id canceled. Exit code 1 when a job could not be canceled (it is sending, "
        "finished or unknown).",
    )  # fmt: skip
    cancel.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    cancel.set_defaults(handler=cancel_command)


def status_command(args: argparse.Namespace) -> int:
    """Show jobs' status; with --wait, poll (all in one round trip) until each is finished."""
    producer = default_producer()
    deadline = time.monotonic() + args.timeout
    statuses = producer.get_statuses(args.job_ids)
    while args.wait and not _settled(statuses) and time.monotonic() < deadline:
        time.sleep(0.2)
        statuses = producer.get_statuses(args.job_ids)
    for job_id, status in zip(args.job_ids, statuses, strict=True):
        if status is None:
            note(f"error: {job_id}: {no_such_job(job_id)}")
        else:
            emit(args, status.as_dict(), status_line(status))
    unfinished = args.wait and not _settled(statuses)
    if unfinished:
        note(f"error: not every job finished in {args.timeout:g} s")
    good = all(status is not None and status.state != JobState.FAILED for status in statuses)
    return DONE if good and not unfinished else FAILED


def cancel_command(args: argparse.Namespace) -> int:
    """Cancel each job; tell which could not be, and in what state they are."""
    producer = default_producer()
    job_ids = list(dict.fromkeys(args.job_ids))
    canceled = [producer.cancel(job_id) for job_id in job_ids]
    statuses = producer.get_statuses(job_ids)
    for job_id, done, status in zip(job_ids, canceled, statuses, strict=True):
        state = status.state.value if status else None
        emit(args, {"job_id": job_id, "canceled": done, "state": state}, job_id if done else "")
        if not done:
            why = f"{state}, cannot be canceled" if status else no_such_job(job_id)
            note(f"error: {job_id}: {why}")
    return DONE if all(canceled) else FAILED


def status_line(status: JobStatus) -> str:
    """Id, state, attempts, the time that matters in that state, the reply and the error."""
    fields = [status.job_id, status.state.value, f"attempts={status.attempts}"]
    label, moment = MOMENTS.get(status.state, ("", lambda _: None))
    when = moment(status)
    if when is not None:
        fields.append(f"{label}={when.isoformat(timespec='seconds')}")
    if status.reply:
        fields.append(f"reply={status.reply.get('title')}")
    return "\t".join(fields + ([status.error] if status.error else []))


def no_such_job(job_id: str) -> str:
    """Why there is no status for an id."""
    if not is_job_id(job_id):
        return "no such job (a job id is 32 hex digits)"
    return "no such job (never enqueued, or its record expired)"


def _settled(statuses: list[JobStatus | None]) -> bool:
    return all(status is None or status.final for status in statuses)
