"""Every Redis key a deployment uses, named once for the producer, the worker and the scripts.

All of a deployment's keys live under its namespace (ZQ_PREFIX, by default `zq:<ZQ_QUEUE>`),
so deployments sharing one Redis database never meet. Keys that one id completes (a job's
record, a worker's held set, a phone's rate) are families: Lua scripts that build such keys
receive the family's prefix from here, never spell it themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

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

    @cached_property
    def job(self) -> Family:
        """Hash: one job's record (fields in `producer.record.Field`)."""
        return Family(f"{self.namespace}:job:")

    @cached_property
    def history(self) -> Family:
        """List: one job's notable events (retries, failures, replays), as JSON."""
        return Family(f"{self.namespace}:history:")

    @cached_property
    def recipient_jobs(self) -> Family:
        """Sorted set per recipient: its jobs, scored by when they were enqueued (for search)."""
        return Family(f"{self.namespace}:jobs-to:")

    @cached_property
    def ready(self) -> str:
        """List: ids of jobs to send now, taken from the right by delivery tasks."""
        return f"{self.namespace}:ready"

    @cached_property
    def wakeup(self) -> str:
        """String, expiring: a delivery task was published and has not started yet."""
        return f"{self.namespace}:wakeup"

    @cached_property
    def schedule(self) -> str:
        """Sorted set: jobs waiting for their send time, a retry or a rate-limit slot."""
        return f"{self.namespace}:schedule"

    @cached_property
    def unfinished(self) -> str:
        """Sorted set: jobs not yet final, scored by when a script last moved them."""
        return f"{self.namespace}:unfinished"

    @cached_property
    def workers(self) -> str:
        """Sorted set: live workers, scored by when their heartbeat runs out."""
        return f"{self.namespace}:workers"

    @cached_property
    def held(self) -> Family:
        """Sorted set per worker: jobs it took and has not finished, scored by when."""
        return Family(f"{self.namespace}:held:")

    @cached_property
    def dead(self) -> str:
        """Hash: dead-letter entries (id → JSON), ordered in time by `dead_index`."""
        return f"{self.namespace}:dead"

    @cached_property
    def dead_index(self) -> str:
        """Sorted set: dead-letter ids, scored by when they were added."""
        return f"{self.namespace}:dead:index"

    @cached_property
    def stats(self) -> str:
        """Hash: counters across all workers (sent, failed, retry, duplicates...)."""
        return f"{self.namespace}:stats"

    @cached_property
    def phone_pace(self) -> Family:
        """String per phone id: when its next send is on pace (GCRA)."""
        return Family(f"{self.namespace}:pace:phone:")

    @cached_property
    def phone_deferred(self) -> Family:
        """String per phone id: the latest time a deferred send was scheduled for."""
        return Family(f"{self.namespace}:deferred:phone:")

    @cached_property
    def recipient_pace(self) -> Family:
        """String per recipient: when the next send to it is on pace (GCRA)."""
        return Family(f"{self.namespace}:pace:to:")

    @cached_property
    def recipient_deferred(self) -> Family:
        """String per recipient: the latest time a deferred send to it was scheduled for."""
        return Family(f"{self.namespace}:deferred:to:")

    @cached_property
    def unacked(self) -> str:
        """kombu's unacknowledged messages of this deployment's queue (and `_index`, `_mutex`)."""
        return f"{self.namespace}:unacked"

    @cached_property
    def offers(self) -> Family:
        """Hash per `<phone id>:<recipient>`: button id → the latest job sent offering it."""
        return Family(f"{self.namespace}:offers:")

    @cached_property
    def event(self) -> Family:
        """Hash per status event for the app (fields in `producer.record.EventField`)."""
        return Family(f"{self.namespace}:event:")

    @cached_property
    def events_ready(self) -> str:
        """List: status events to deliver now."""
        return f"{self.namespace}:events:ready"

    @cached_property
    def events_schedule(self) -> str:
        """Sorted set: status events waiting to be retried, scored by when."""
        return f"{self.namespace}:events:schedule"

    @cached_property
    def events_held(self) -> Family:
        """Sorted set per worker: status events it is delivering."""
        return Family(f"{self.namespace}:events:held:")

    @cached_property
    def events_dead(self) -> str:
        """Sorted set: status events that failed for good, scored by when."""
        return f"{self.namespace}:events:dead"

    @cached_property
    def inbound(self) -> Family:
        """Hash per Zixflow event received (its eventId): the event, and what became of it."""
        return Family(f"{self.namespace}:inbound:")

    @cached_property
    def inbound_index(self) -> str:
        """Sorted set: Zixflow events received, scored by when."""
        return f"{self.namespace}:inbound:index"

    @cached_property
    def deferrals(self) -> str:
        """Hash: phone id → sends a rate limit put off."""
        return f"{self.namespace}:stats:deferrals"

    @cached_property
    def histogram(self) -> Family:
        """Hash per measured duration: bucket upper bound → count, and `sum`, `count`."""
        return Family(f"{self.namespace}:histogram:")

    @cached_property
    def series(self) -> Family:
        """Hash per 10-second slot: sent and failed jobs in it, for live rates."""
        return Family(f"{self.namespace}:series:")

    def idempotency(self, key: str) -> str:
        """The string mapping an idempotency key to its job: the key hashed, so any length fits."""
        return f"{self.namespace}:idem:{hashlib.sha256(key.encode()).hexdigest()}"

    def __repr__(self) -> str:
        return f"Keys({self.namespace!r})"
