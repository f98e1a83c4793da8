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

A Redis out of memory (under `noeviction`) or turned into a read-only replica by a failover
refuses kombu's bookkeeping writes, which stopped the worker for good: both now count as
connection errors, so the worker reconnects and carries on once Redis writes again.

Last, a Redis that stops answering without closing its connections (frozen, or its host gone:
what Sentinel fails over from) left the worker half on the old server (celery#6348): kombu
drops the BRPOP connection once its answer is overdue, but the channel's other connections,
which record and acknowledge what BRPOP takes, still wait on the old server. They are all
dropped together now, so the next BRPOP and its bookkeeping reach the same (new) master.
`SentinelTransport` is the same transport over kombu's Sentinel support.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Iterator
from queue import Empty
from typing import Any
from urllib.parse import urlsplit

import redis
from kombu.transport import redis as kombu_redis

from producer.sentinel_url import is_sentinel_url
from producer.settings import ProducerSettings
from worker.poison import dead_letter

SENTINEL_HEALTH_CHECK = 2
"""Seconds past its timeout a BRPOP through Sentinel may go unanswered before the worker drops
its connections and asks the Sentinels again (a frozen master answers nothing, ever)."""


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


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The channel above, reaching Redis through its Sentinels."""


class Poller(kombu_redis.MultiChannelPoller):
    """kombu's poller; when it drops a BRPOP connection that got no answer, it drops the
    channel's other connections too."""

    def maybe_check_brpop_health(self) -> None:
        polling = {channel: channel._in_poll for channel in self._channels
                   if channel._in_poll and channel._in_poll._sock is not None}  # fmt: skip
        super().maybe_check_brpop_health()  # type: ignore[no-untyped-call]
        for channel, connection in polling.items():
            if connection._sock is None:  # kombu found it stale and dropped it
                for pool in (channel._pool, channel._async_pool):
                    if pool is not None:
                        pool.disconnect()  # connections in use too
                subscriber = vars(channel).get("subclient")  # a cached property, if built
                if subscriber is not None and subscriber.connection is not None:
                    subscriber.connection.disconnect()


class Transport(kombu_redis.Transport):
    """The Redis transport, with that channel and poller, a check of each item it delivers,
    and Redis refusing writes taken as a connection to make again."""

    Channel = Channel
    connection_errors = (*kombu_redis.Transport.connection_errors, redis.OutOfMemoryError,
                         redis.ReadOnlyError)  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.cycle = Poller()  # type: ignore[no-untyped-call,assignment]

    def _deliver(self, message: Any, queue: str) -> None:
        problem = _malformed(message)
        if problem:
            dead_letter(f"queue item is not a task message: {problem}", json.dumps(message))
            return
        super()._deliver(message, queue)  # type: ignore[no-untyped-call]


class SentinelTransport(Transport, kombu_redis.SentinelTransport):
    """The transport above, reaching Redis through its Sentinels (a sentinel:// broker URL)."""

    Channel = SentinelChannel


def transport_name(url: str) -> str | None:
    """The transport Celery should use for a broker URL: ours for Redis and for Sentinels."""
    if is_sentinel_url(url):
        return "worker.broker:SentinelTransport"
    if url.startswith(("redis://", "rediss://", "unix://")):
        return "worker.broker:Transport"
    return None


def failover_strategy(url: str) -> Any:
    """kombu's failover strategy for a broker URL: `stay_on_sentinels` for Sentinels, else
    None (kombu's round robin)."""
    return stay_on_sentinels if is_sentinel_url(url) else None


def stay_on_sentinels(addresses: list[str]) -> Iterator[str]:
    """Where kombu goes after a failed connect through Sentinel: where it was.

    kombu then switches to the URL's next address, and with it to the transport that address's
    scheme names (kombu's own SentinelTransport, without the fixes here) and to its credentials
    (often none): after one failover, the worker ran on kombu's transport. Through Sentinel
    every address is asked anyway, so the host kombu switches to is the first one's.
    """
    return itertools.repeat(urlsplit(addresses[0]).hostname or "")


def sentinel_options(settings: ProducerSettings) -> dict[str, Any]:
    """Transport options a sentinel:// broker needs; none for another.

    Without socket timeouts, a worker whose master froze waits on it forever; with them, and a
    short health check, it is on the new master seconds after the promotion.
    """
    if not is_sentinel_url(settings.effective_broker_url):
        return {}
    return {
        "master_name": settings.sentinel_master,
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.socket_timeout,
        "health_check_interval": SENTINEL_HEALTH_CHECK,
    }


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
