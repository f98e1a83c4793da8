"""The delivery task: a thin shell around the courier."""

from __future__ import annotations

import json
import logging
from typing import Any

from producer.deadletters import DeadLetter
from producer.keys import TASK_NAME
from worker.celery_app import app
from worker.delivery import REDIS_TROUBLE
from worker.runtime import runtime

log = logging.getLogger(__name__)


@app.task(name=TASK_NAME, ignore_result=True)
def deliver(*args: Any, **kwargs: Any) -> dict[str, int]:
    """Deliver a batch of ready jobs; returns how many ended each way.

    Takes any arguments so that a malformed message is dead-lettered instead of failing the
    call. If Redis is away, the jobs stay where they are and the task ends: a wake-up is
    published again once Redis answers.
    """
    if args or kwargs:
        reason = "malformed delivery task: it takes no arguments"
        raw = json.dumps({"args": args, "kwargs": kwargs}, default=str)
        runtime().dead_letters.add(DeadLetter.for_poison(reason, raw))
        return {"malformed": 1}
    try:
        return runtime().deliver()
    except REDIS_TROUBLE as error:
        log.warning("no jobs taken, Redis trouble (%s); they wait for the next wake-up", error)
        return {}
