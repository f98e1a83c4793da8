"""kombu's Redis transport, made to survive Redis going away or full, and items it cannot read.

When the broker connection drops, Celery closes it, and kombu's channel may then still try to
reach Redis through the connection it has just released (to return unacknowledged messages,
or to ack or reject one): the AttributeError that raises stops the worker for good (kombu
5.7). Raising the connection error it stands for instead lets Celery log it and reconnect;
the messages involved are safe in Redis and come back after the visibility timeout.

kombu also reads each item it pops from the queue list before any Celery hook sees it: an
item that is not JSON stopped the worker, and one that is not a kombu message (no
`properties.delivery_tag`, a body its encoding cannot decode) was dropped without a trace or
stopped the worker too. Such items are dead-lettered here instead.

Last, a Redis out of memory (under `noeviction`) or turned into a read-only replica by a
failover refuses kombu's bookkeeping writes, which stopped the worker for good: both now count
as connection errors, so the worker reconnects and carries on once Redis writes again.
"""

from __future__ import annotations

import base64
import binascii
import json
from queue import Empty
from typing import Any

import redis
from kombu.transport import redis as kombu_redis

from worker.poison import dead_letter


class Channel(kombu_redis.Channel):
    """The Redis channel: it fails like a lost connection once released, and dead-letters
    items it cannot read."""

    def _create_client(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("the broker connection was closed")
        return super()._create_client(asynchronous)  # type: ignore[no-untyped-call]

    def _brpop_read(self, **options: Any) -> bool:
        try:
            return super()._brpop_read(**options)  # type: ignore[no-untyped-call,no-any-return]
        except json.JSONDecodeError as error:  # the item is off the list: keep it
            dead_letter(f"queue item is not JSON: {error.msg}", error.doc)
            raise Empty() from None


class Transport(kombu_redis.Transport):
    """The Redis transport, with that channel, a check of each item it delivers, and Redis
    refusing writes taken as a connection to make again."""

    Channel = Channel
    connection_errors = (*kombu_redis.Transport.connection_errors, redis.OutOfMemoryError,
                         redis.ReadOnlyError)  # fmt: skip

    def _deliver(self, message: Any, queue: str) -> None:
        problem = _malformed(message)
        if problem:
            dead_letter(f"queue item is not a task message: {problem}", json.dumps(message))
            return
        super()._deliver(message, queue)  # type: ignore[no-untyped-call]


def _malformed(item: Any) -> str | None:
    """What keeps a decoded queue item from being a kombu message, if anything."""
    properties = item.get("properties") if isinstance(item, dict) else None
    if not isinstance(properties, dict):
        return "no properties object"
    if "delivery_tag" not in properties:
        return "no delivery tag"
    body = item.get("body")
    if properties.get("body_encoding") == "base64" and body:
        try:
            base64.b64decode(body)  # as kombu decodes it
        except (binascii.Error, TypeError, ValueError):
            return "body is not valid base64"
    return None
