"""What workers count in Redis for the deployment's metrics, named once for both sides.

Counters live in the hash `Keys.stats`; durations in histogram hashes (`Keys.histogram`) with
one field per bucket's upper bound plus `sum` and `count`; sent and failed jobs per 10-second
slot in `Keys.series`, for live rates. All workers add to the same keys, so the numbers are
the whole deployment's, however many workers run.
"""

from __future__ import annotations

SEND_SECONDS = "send_seconds"
"""How long each HTTP send to Zixflow took."""
SEND_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_SECONDS = "latency_seconds"
"""How long each job took from being enqueued to being sent."""
LATENCY_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
SERIES_SLOT = 10
"""Seconds per slot of `Keys.series`; slots are kept for an hour."""
