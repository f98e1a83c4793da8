"""`zixflow-queue stats`: the snapshot for a person, and as one JSON object."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from producer import Producer
from tests.support import table_rows, wire_message, wire_messages
from tests.zixflow_queue.conftest import CliResult


def test_stats_shows_the_backlog(producer: Producer, run: Callable[..., CliResult]) -> None:
    producer.enqueue_many(wire_messages(3))
    producer.enqueue(wire_message(), send_at=time.time() + 600)

    code, out, _ = run("stats")

    assert code == 0
    rows = table_rows(out)
    assert rows["waiting"] == "3 jobs in 1 queue items"
    assert rows["scheduled"] == "1"
    assert rows["sent / failed / canceled"] == "0 / 0 / 0"
    assert rows["send duration p50 / p95"] == "- / -"
    assert rows["oldest waiting"].endswith(" ms")


def test_stats_json_is_one_object(producer: Producer, run: Callable[..., CliResult]) -> None:
    job_id = producer.enqueue(wire_message())
    producer.cancel(job_id)

    code, out, _ = run("stats", "--json")

    assert code == 0
    (line,) = out.splitlines()
    stats = json.loads(line)
    assert stats["counters"] == {"canceled": 1}
    assert (stats["waiting"], stats["scheduled"], stats["workers"]) == (1, 0, 0)
    assert stats["send_duration_seconds"] == {"count": 0, "sum": 0.0, "p50": None, "p95": None}
    assert stats["last_minute_per_second"] == {"sent": 0.0, "failed": 0.0}
