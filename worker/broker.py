"""kombu's Redis transport, made to survive Redis going away and items it cannot read.

When the broker connection drops, Celery closes it, and kombu's channel may then still try to
reach Redis through the connection it has just released (to return unacknowledged messages,
or to ack or reject one): the AttributeError that raises stops the worker for good (kombu
5.7). Raising the connection error it stands for instead lets Celery log it and reconnect;
the messages involved are safe in Redis and come back after the visibility timeout.

kombu also reads each item it pops from the queue list before any Celery hook sees it: an
item that is not JSON stopped the worker, and one that is not a kombu message (no
`properties.delivery_tag`, a body its encoding cannot decode) was dropped without a trace or
stopped the worker too. Such items are dead-lettered here instead.

Last, kombu hands a message out again once it has been unacknowledged for the visibility
timeout, even while a live worker is still running its task (a batch of slow sends can take
minutes). Each worker now marks its unacknowledged messages as fresh whenever the transport
looks for expired ones, so only the messages of a worker that died are handed out again.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from queue import Empty
from typing import Any

import redis
from kombu.transport import redis as kombu_redis

from worker.poison import dead_letter


class QoS(kombu_redis.QoS):
    """kombu's ack emulation, keeping this worker's unacknowledged messages from expiring."""

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        """Mark this worker's messages as fresh, then restore those of workers gone silent."""
        held = tuple(self._delivered)  # acked ones linger here, but are gone from the index
        if held:
            with self.channel.conn_or_acquire() as client:
                client.zadd(self.unacked_index_key, dict.fromkeys(held, time.time()), xx=True)
        super().restore_visible(start, num, interval)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):
    """The Redis channel: it fails like a lost connection once released, dead-letters items
    it cannot read, and keeps its own unacknowledged messages fresh."""

    QoS = QoS

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
    """The Redis transport, with that channel and a check of each item it delivers."""

    Channel = Channel

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
