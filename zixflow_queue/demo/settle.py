"""After the last job finished: waiting for the replies still to come, and their status events."""

from __future__ import annotations

import time

from producer.enqueue import Producer
from producer.status import JobStatus
from zixflow_queue.cli.output import note
from zixflow_queue.demo.receiver import INVALID, EventReceiver
from zixflow_queue.sandbox.client import CONTROL_ERRORS, SandboxClient

TIMEOUT = 30.0
"""Seconds the demo waits for them: replies come up to 3 s after their message, then retries."""


def await_replies(
    producer: Producer, job_ids: list[str], sandbox: SandboxClient, receiver: EventReceiver
) -> list[JobStatus]:
    """Wait until the sandbox has posted every reply it drew and the receiver has every status
    event (or they failed for good), then the jobs' statuses; at most TIMEOUT seconds."""
    note("Waiting for the recipients' replies and the status events...")
    deadline = time.monotonic() + TIMEOUT
    while not _settled(producer, job_ids, sandbox, receiver):
        if time.monotonic() > deadline:
            note(f"Not every reply or status event arrived in {TIMEOUT:.0f} s")
            break
        time.sleep(0.2)
    return [status for status in producer.get_statuses(job_ids) if status is not None]


def _settled(
    producer: Producer, job_ids: list[str], sandbox: SandboxClient, receiver: EventReceiver
) -> bool:
    """No reply is waiting to be posted, and each final job and each matched reply has had its
    event delivered or failed for good."""
    try:
        if sandbox.stats()["replies"]["waiting"]:
            return False
    except CONTROL_ERRORS:
        return False
    counts = producer.store.records.hmget(producer.keys.stats, "inbound:matched", "events:failed")
    matched, failed = (int(count or 0) for count in counts)
    finals = sum(status is not None and status.final for status in producer.get_statuses(job_ids))
    delivered = sum(count for kind, count in receiver.counts().items() if kind != INVALID)
    return delivered + failed >= finals + matched
