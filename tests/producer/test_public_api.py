"""The public surface: pinned names, and a producer that loads no worker code."""

from __future__ import annotations

import subprocess
import sys

import producer
import worker


def test_producer_exports_exactly_the_public_names() -> None:
    assert producer.__all__ == [
        "IdempotencyConflict",
        "JobState",
        "JobStatus",
        "Producer",
        "ProducerError",
        "RedisUnavailable",
        "ReplyButtonMessage",
        "ValidationError",
        "enqueue",
        "enqueue_many",
        "get_status",
        "reply_buttons",
    ]
    assert issubclass(producer.ValidationError, ValueError)


def test_worker_exposes_only_the_celery_app() -> None:
    assert worker.__all__ == ["app"]
    assert worker.app.main == "zixflow_queue"


def test_importing_producer_loads_no_worker_code_and_no_http_client() -> None:
    probe = (
        "import sys, producer; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'worker', 'requests'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
