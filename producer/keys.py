"""Redis key names and the task name: the one place both sides agree on them."""

from __future__ import annotations

TASK_NAME = "zixflow_queue.deliver"
PREFIX = "zq"

SCHEDULE = f"{PREFIX}:schedule"
"""Sorted set of job ids waiting for a retry or a rate-limit slot, scored by due time."""

LEASES = f"{PREFIX}:leases"
"""Sorted set of job ids being sent, scored by the time their worker's claim runs out."""

UNFINISHED = f"{PREFIX}:unfinished"
"""Sorted set of jobs not yet sent or failed, scored by when a delivery was last published."""

DEAD = f"{PREFIX}:dead"
"""Hash of dead-lettered entries (id → JSON), with DEAD_INDEX ordering them by time."""

DEAD_INDEX = f"{PREFIX}:dead:index"

STATS = f"{PREFIX}:stats"
"""Hash of counters across all workers (sent, failed, retried, duplicates...)."""


def job(job_id: str) -> str:
    """The hash holding one job's record."""
    return f"{PREFIX}:job:{job_id}"


def events(job_id: str) -> str:
    """The list of one job's notable events (retries, failures, replays)."""
    return f"{PREFIX}:job:{job_id}:events"


def idempotency(key: str) -> str:
    """The string mapping an idempotency key to its job id and message fingerprint."""
    return f"{PREFIX}:idem:{key}"
