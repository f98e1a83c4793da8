"""Removing a deployment from a Redis it shares: for the demo and the benchmark, never users."""

from __future__ import annotations

from producer.settings import ProducerSettings
from producer.store import Store

BATCH = 1000


def remove_deployment(store: Store, settings: ProducerSettings, *, keep_records: bool) -> int:
    """Delete every key of a deployment (its namespace, its queue and kombu's bindings for it).

    With `keep_records`, job records and their histories stay until they expire. Returns how
    many keys were deleted. Keys of other deployments are never touched: all of this one's
    live under its own namespace.
    """
    keys = settings.keys
    kept = (keys.job.prefix, keys.history.prefix) if keep_records else ()
    queue = settings.queue
    doomed = [queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
    deleted = int(store.broker.delete(*doomed))
    batch: list[str] = []
    for key in store.records.scan_iter(f"{keys.namespace}:*", count=BATCH):
        if not key.startswith(kept) or not kept:
            batch.append(key)
        if len(batch) >= BATCH:
            deleted += int(store.records.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(store.records.delete(*batch))
    return deleted
