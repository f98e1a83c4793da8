"""The garbage collector's settings for long-running processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from producer.collector import YOUNG_COLLECTION_AFTER


def test_the_service_process_freezes_its_startup_heap_and_collects_the_young_less_often() -> None:
    probe = (
        "import gc, json\n"
        "from zixflow_queue.service.app import app_from_environment\n"
        "before = gc.get_freeze_count()\n"
        "app_from_environment()\n"
        "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()[0]]))\n"
    )
    env = {**os.environ, "ZQ_API_TOKENS": "a-token-for-the-probe"}
    printed = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    before, frozen, young = json.loads(printed.splitlines()[-1])
    assert before == 0
    assert frozen > 10_000  # the modules and the app
    assert young == YOUNG_COLLECTION_AFTER
