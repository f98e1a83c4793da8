"""Every Redis key a deployment uses, named once for the producer, the worker and the scripts.

All of a deployment's keys live under its namespace (ZQ_PREFIX, by default `zq:<ZQ_QUEUE>`),
so deployments sharing one Redis database never meet. Keys that one id completes (a job's
record, a worker's held set, a phone's rate) are families: Lua scripts that build such keys
receive the family's prefix from here, never spell it themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TASK_NAME = "zixflow_queue.deliver"
"""The one Celery task a deployment's queue carries: a wake-up to deliver ready jobs."""


def celery_exchanges(queue: str) -> dict[str, str]:
    """The Celery exchanges of the deployment on `queue`: its remote control and its events.

    Named after the queue, so that deployments sharing a Redis database never see each
    other's workers in `celery inspect` or Flower.
    """
    return {"control": queue, "events": f"{queue}.events"}


@dataclass(frozen=True, slots=True)
class Family:
    """Keys made of a prefix and one id, e.g. `zq:zixflow:job:` + job id."""

    prefix: str

    def __call__(self, member: str) -> str:
        return self.prefix + member


class Keys:
    """The keys of one deployment."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        at = f"{namespace}:"
        self.job = Family(at + "job:")
        """Hash: one job's record (fields in `producer.record.Field`)."""
        self.history = Family(at + "history:")
        """List: one job's notable events (retries, failures, replays), as JSON."""
        self._idempotency = Family(at + "idem:")
        self.ready = at + "ready"
        """List: ids of jobs to send now, taken from the right by delivery tasks."""
        self.wakeup = at + "wakeup"
        """String, expiring: a delivery task was published and has not started yet."""
        self.schedule = at + "schedule"
        """Sorted set: jobs waiting for their send time, a retry or a rate-limit slot."""
        self.unfinished = at + "unfinished"
        """Sorted set: jobs not yet final, scored by when a script last moved them."""
        self.workers = at + "workers"
        """Sorted set: live workers, scored by when their heartbeat runs out."""
        self.held = Family(at + "held:")
        """Sorted set per worker: jobs it took and has not finished, scored by when."""
        self.dead = at + "dead"
        """Hash: dead-letter entries (id → JSON), ordered in time by `dead_index`."""
        self.dead_index = at + "dead:index"
        self.stats = at + "stats"
        """Hash: counters across all workers (sent, failed, retry, duplicates...)."""
        self.phone_pace = Family(at + "pace:phone:")
        """String per phone id: when its next send is on pace (GCRA)."""
        self.phone_deferred = Family(at + "deferred:phone:")
        """String per phone id: the latest time a deferred send was scheduled for."""
        self.recipient_pace = Family(at + "pace:to:")
        self.recipient_deferred = Family(at + "deferred:to:")
        self.unacked = at + "unacked"
        """kombu's unacknowledged messages of this deployment's queue (and `_index`, `_mutex`)."""

    def idempotency(self, key: str) -> str:
        """The string mapping an idempotency key to its job: the key hashed, so any length fits."""
        return self._idempotency(hashlib.sha256(key.encode()).hexdigest())

    def __repr__(self) -> str:
        return f"Keys({self.namespace!r})"
