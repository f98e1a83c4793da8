"""Celery messages for the delivery task, built to be pushed onto the Redis queue directly.

Publishing through kombu costs a round trip of its own; writing the message with the same
call that stores the job record makes an enqueue one round trip. Celery builds the task
message (protocol 2) once, as a template; each message then differs from it only in its ids
and arguments, and is wrapped the way kombu's Redis transport wraps a message.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery

from producer.keys import TASK_NAME

_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class EnvelopeBuilder:
    """Turns a list of job ids into the JSON string kombu's Redis transport expects."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        template = Celery("zixflow-producer", set_as_current=False).amqp.as_task_v2(
            "", TASK_NAME, args=[[]], origin=_ORIGIN, ignore_result=True
        )
        self._headers: dict[str, Any] = template.headers
        self._properties: dict[str, Any] = {
            **template.properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
        }
        self._embed: dict[str, Any] = template.body[2]

    def build_chunks(self, job_ids: Sequence[str], size: int) -> list[str]:
        """Messages carrying `size` job ids each (the last one the rest), in order."""
        return [self.build(job_ids[start : start + size]) for start in range(0, len(job_ids), size)]

    def build(self, job_ids: Sequence[str]) -> str:
        """One delivery-task message carrying these job ids."""
        task_id = str(uuid.uuid4())
        args = [list(job_ids)]
        body = _compact([args, {}, self._embed]).encode()
        headers = {**self._headers, "id": task_id, "root_id": task_id, "argsrepr": repr(args)}
        properties = {
            **self._properties,
            "correlation_id": task_id,
            "delivery_tag": str(uuid.uuid4()),
        }
        return _compact(
            {
                "body": base64.b64encode(body).decode(),
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": headers,
                "properties": properties,
            }
        )
