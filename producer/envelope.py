"""Celery messages for the delivery task, built to be pushed onto the Redis queue directly.

Publishing through kombu costs a round trip of its own; writing the message with the same
LPUSH that stores the job record makes an enqueue one round trip. Celery builds the task
message (protocol 2); this module only wraps it the way kombu's Redis transport does.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from collections.abc import Sequence

from celery import Celery

from producer.keys import TASK_NAME

_CONTENT_TYPE = "application/json"
_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


class EnvelopeBuilder:
    """Turns a list of job ids into the JSON string kombu's Redis transport expects."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self._amqp = Celery("zixflow-producer", set_as_current=False).amqp

    def build_chunks(self, job_ids: Sequence[str], size: int) -> list[str]:
        """Messages carrying `size` job ids each (the last one the rest), in order."""
        return [self.build(job_ids[start : start + size]) for start in range(0, len(job_ids), size)]

    def build(self, job_ids: Sequence[str]) -> str:
        """One delivery-task message carrying these job ids."""
        task_id = str(uuid.uuid4())
        task = self._amqp.as_task_v2(
            task_id, TASK_NAME, args=[list(job_ids)], origin=_ORIGIN, ignore_result=True
        )
        body = json.dumps(task.body, separators=(",", ":")).encode()
        return json.dumps(
            {
                "body": base64.b64encode(body).decode(),
                "content-encoding": "utf-8",
                "content-type": _CONTENT_TYPE,
                "headers": task.headers,
                "properties": {
                    **task.properties,
                    "delivery_mode": 2,
                    "delivery_info": {"exchange": "", "routing_key": self.queue},
                    "priority": 0,
                    "body_encoding": "base64",
                    "delivery_tag": str(uuid.uuid4()),
                },
            },
            separators=(",", ":"),
        )
