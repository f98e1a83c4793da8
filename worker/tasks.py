"""The delivery task: a thin shell around the courier."""

from __future__ import annotations

import json
from typing import Any, TypeGuard

import redis
from celery.exceptions import Reject

from producer.deadletters import DeadLetter
from producer.keys import TASK_NAME
from worker.celery_app import app
from worker.runtime import SendsStillInFlight, runtime

MAX_JOB_ID_LENGTH = 64


@app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(*args: Any, **kwargs: Any) -> dict[str, int]:
    """Send the jobs whose ids the task carries; returns how many ended each way.

    Takes any arguments so that a malformed message is dead-lettered instead of failing the
    call, which would leave it unacknowledged and coming back forever.
    """
    if kwargs or len(args) != 1 or not _is_job_id_list(args[0]):
        reason = "malformed delivery task: expected one argument, a list of job ids"
        raw = json.dumps({"args": args, "kwargs": kwargs}, default=str)
        runtime().dead_letters.add(DeadLetter.for_poison(reason, raw))
        return {"malformed": 1}
    try:
        return runtime().deliver(args[0])
    except (redis.ConnectionError, redis.TimeoutError, SendsStillInFlight) as error:
        # Put the message back: Celery would otherwise drop a failed task's message, and with
        # it the jobs of this chunk not yet claimed. Claims make running it again safe.
        raise Reject(f"not every job was recorded: {error}", requeue=True) from error


def _is_job_id_list(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(
        isinstance(item, str) and 0 < len(item) <= MAX_JOB_ID_LENGTH for item in value
    )
