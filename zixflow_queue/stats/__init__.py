"""The deployment's numbers, read from what every worker records in Redis."""

from zixflow_queue.stats.snapshot import Histogram, Snapshot, SnapshotReader

__all__ = ["Histogram", "Snapshot", "SnapshotReader"]
