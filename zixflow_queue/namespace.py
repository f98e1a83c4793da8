"""Removing a deployment from a Redis it shares: for the demo and the benchmark, never users."""

from __future__ import annotations

from producer.keys import celery_exchanges
from producer.settings import ProducerSettings
from producer.store import Store

BATCH = 1000
BINDING_DEADLINES = "_kombu.binding_deadlines"
"""kombu's one sorted set of binding-table deadlines, shared by every exchange in a database."""


def remove_deployment(store: Store, settings: ProducerSettings) -> int:
    """Delete every key of a deployment: its namespace, its queue and kombu's tables for it.

    Returns how many keys were deleted. Keys of other deployments are never touched: all of
    this one's live under its own namespace, and its Celery exchanges are named after its
    queue (the control exchange is the queue's name; see worker.celery_app).
    """
    queue, celery = settings.queue, celery_exchanges(settings.queue)
    control = celery["control"]
    exchanges = [queue, f"{control}.pidbox", f"reply.{control}.pidbox", celery["events"]]
    tables = [f"_kombu.binding{kind}.{name}" for name in exchanges for kind in ("", "_permanent")]
    deleted = int(store.broker.delete(queue, *tables))
    store.broker.zrem(BINDING_DEADLINES, *exchanges)
    batch: list[str] = []
    for key in store.records.scan_iter(f"{settings.keys.namespace}:*", count=BATCH):
        batch.append(key)
        if len(batch) >= BATCH:
            deleted += int(store.records.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(store.records.delete(*batch))
    return deleted
