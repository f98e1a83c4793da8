"""The wake-up task message, written straight onto the queue list without loading Celery.

A delivery task carries no arguments: it takes ready jobs off the deployment's ready list.
Every message is Celery's task protocol 2 (JSON body `[args, kwargs, embed]`, headers naming
the task), wrapped the way kombu's Redis transport stores a message; only the ids differ from
one message to the next, so the rest is rendered once.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid

from producer.keys import TASK_NAME

WAKEUP_TTL_MS = 2000
"""How long a published wake-up counts as waiting: a lost one is replaced after this."""
_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_BODY = base64.b64encode(
    _compact([[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()
).decode()
_HEADERS: dict[str, object] = {
    "lang": "py", "task": TASK_NAME, "shadow": None, "eta": None, "expires": None,
    "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
    "parent_id": None, "argsrepr": "()", "kwargsrepr": "{}", "origin": _ORIGIN,
    "ignore_result": True, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
}  # fmt: skip
TASK_ID = "@@id@@"
"""Where a message's ids go in `EnvelopeBuilder.template` (the Lua scripts fill it in)."""


class EnvelopeBuilder:
    """Builds the JSON string kombu's Redis transport expects for one wake-up on `queue`.

    A message's task id, correlation id and delivery tag are one fresh id; `template` is the
    message with a placeholder for it, so that a script can make as many messages as it needs
    from one template and a random base (`ids`).
    """

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.template = _compact({
            "body": _BODY,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {**_HEADERS, "id": TASK_ID, "root_id": TASK_ID},
            "properties": {
                "correlation_id": TASK_ID, "reply_to": "", "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
                "body_encoding": "base64", "delivery_tag": TASK_ID,
            },
        })  # fmt: skip

    def build(self) -> str:
        """One wake-up message with a fresh id."""
        return self.template.replace(TASK_ID, str(uuid.uuid4()))

    @staticmethod
    def ids() -> str:
        """A random base for the ids a script makes: it appends four hex digits (a UUID)."""
        return str(uuid.uuid4())[:-4]
