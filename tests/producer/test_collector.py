"""The garbage collector's settings for the long-running processes: the service and the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from producer.collector import YOUNG_COLLECTION_AFTER

BUILDERS = {
    "service": "from zixflow_queue.service.app import app_from_environment as build",
    "worker": "from worker.runtime import runtime as build",
}


@pytest.mark.parametrize("process", sorted(BUILDERS))
def test_a_process_freezes_its_startup_heap_and_collects_the_young_less_often(
    process: str, redis_url: str
) -> None:
    probe = (
        f"import gc, json\n{BUILDERS[process]}\n"
        "before = gc.get_freeze_count()\n"
        "build()\n"
        "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()[0]]))\n"
    )
    env = {**os.environ, "REDIS_URL": redis_url, "ZQ_API_TOKENS": "a-probe-token",
           "ZIXFLOW_API_KEY": "a-probe-key", "ZIXFLOW_BASE_URL": "http://127.0.0.1:9"}  # fmt: skip
    printed = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    before, frozen, young = json.loads(printed.splitlines()[-1])
    assert before == 0
    assert frozen > 10_000  # the modules and what the process built to run
    assert young == YOUNG_COLLECTION_AFTER
