"""kombu's Redis transport, made to survive Redis going away.

When the broker connection drops, Celery closes it, and kombu's channel may then still try to
reach Redis through the connection it has just released (to return unacknowledged messages,
or to ack or reject one): the AttributeError that raises stops the worker for good (kombu
5.7). Raising the connection error it stands for instead lets Celery log it and reconnect;
the messages involved are safe in Redis and come back after the visibility timeout.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """The Redis channel, failing like a lost connection once its connection is released."""

    def _create_client(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("the broker connection was closed")
        return super()._create_client(asynchronous)  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    """The Redis transport, with that channel."""

    Channel = Channel
