"""The producer's Redis: connections, Lua scripts, and the one boundary where Redis errors end.

Every Redis error the producer side can meet becomes a `StorageError` at `storage_boundary`:
`RedisUnavailable` when nothing can have been stored (no connection, out of memory, a
read-only replica), `OutcomeUnknown` when a write was sent and its answer never came.
Connections record whether a command went out, which is what tells the two apart; redis-py's
own automatic retries are off, because retrying a write whose answer was lost could store it
twice behind the caller's back.
"""

from __future__ import annotations

import contextvars
import copy
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import hiredis
import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from producer.errors import OutcomeUnknown, RedisUnavailable, StorageError
from producer.sentinel_url import is_sentinel_url, parse_sentinel_url
from producer.settings import ProducerSettings, producer_settings

DEFAULT_POOL_SIZE = 100

_command_sent = contextvars.ContextVar("zq_command_sent", default=False)


class _Tracked:
    """Notes that a command left for Redis once the connection is made and healthy.

    The connection's own commands (the handshake's PING, HELLO and CLIENT SETINFO, a health
    check's PING) do not count: while they wait for an answer, nothing of the caller's went out.
    """

    _preparing = False

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        self._preparing, before = True, self._preparing
        try:
            super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._preparing = before

    def check_health(self) -> None:
        self._preparing, before = True, self._preparing
        try:
            super().check_health()  # type: ignore[misc]
        finally:
            self._preparing = before

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self._preparing:
            super().send_packed_command(command, check_health=check_health)  # type: ignore[misc]
            return
        if not self._sock:  # type: ignore[attr-defined]
            self.connect()  # type: ignore[attr-defined]
        if check_health:
            self.check_health()
        _command_sent.set(True)
        super().send_packed_command(command, check_health=False)  # type: ignore[misc]


class _AsyncTracked:
    """`_Tracked` for redis.asyncio's connections; they also pack commands with hiredis."""

    _preparing = False

    def pack_command(self, *args: Any) -> list[bytes]:
        """The command in Redis's protocol, packed by hiredis.

        redis.asyncio packs in Python, about eight times slower: 34 ms against 4 ms for one
        enqueue.lua call of 1,000 jobs, most of the HTTP service's time for such a batch.
        """
        if isinstance(args[0], str):  # as redis-py does: "SCRIPT LOAD" is sent as two words
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # e.g. a memoryview, or None: redis-py's own packing, or its DataError
            return super().pack_command(*args)  # type: ignore[misc,no-any-return]

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        self._preparing, before = True, self._preparing
        try:
            await super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._preparing = before

    async def check_health(self) -> None:
        self._preparing, before = True, self._preparing
        try:
            await super().check_health()  # type: ignore[misc]
        finally:
            self._preparing = before

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._preparing:
            if not self.is_connected:  # type: ignore[attr-defined]
                await self.connect()  # type: ignore[attr-defined]
            if check_health:
                await self.check_health()
            _command_sent.set(True)
            check_health = False
        await super().send_packed_command(command, check_health=check_health)  # type: ignore[misc]


class AsyncTrackedConnection(_AsyncTracked, redis.asyncio.Connection):
    """An asyncio TCP connection that notes when a command went out."""


class AsyncTrackedSSLConnection(_AsyncTracked, redis.asyncio.SSLConnection):
    """An asyncio TLS connection that notes when a command went out."""


class AsyncTrackedUnixConnection(_AsyncTracked, redis.asyncio.UnixDomainSocketConnection):
    """An asyncio Unix-socket connection that notes when a command went out."""


class AsyncTrackedSentinelConnection(
    _AsyncTracked, redis.asyncio.sentinel.SentinelManagedConnection
):
    """An asyncio connection to the master the Sentinels name, noting when a command went out."""


_ASYNC_TRACKED = {"redis": AsyncTrackedConnection, "rediss": AsyncTrackedSSLConnection,
                  "unix": AsyncTrackedUnixConnection}  # fmt: skip


class TrackedConnection(_Tracked, redis.Connection):
    """A TCP connection that notes when a command went out."""


class TrackedSSLConnection(_Tracked, redis.SSLConnection):
    """A TLS connection that notes when a command went out."""


class TrackedUnixConnection(_Tracked, redis.UnixDomainSocketConnection):
    """A Unix-socket connection that notes when a command went out."""


class TrackedSentinelConnection(_Tracked, redis.sentinel.SentinelManagedConnection):
    """A connection to the master the Sentinels name, noting when a command went out.

    Each connect asks the Sentinels where the master is: after a failover, the first call that
    finds its connection closed reaches the new master.
    """


_TRACKED = {"redis": TrackedConnection, "rediss": TrackedSSLConnection,
            "unix": TrackedUnixConnection}  # fmt: skip


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """Connections to the master the Sentinels name; beyond its size a caller waits for one."""


class _AsyncBlockingSentinelPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """`_BlockingSentinelPool` for redis.asyncio."""


@dataclass(frozen=True)
class Store:
    """Redis for job records, and Redis for the broker queue (often the same one)."""

    records: redis.Redis
    broker: redis.Redis
    shared: bool
    """True when records and queue live in one Redis database, so one script writes both."""

    @classmethod
    def connect(cls, settings: ProducerSettings, *, threads: int = 0) -> Store:
        """Connect to the Redis servers named by the settings (lazily: no I/O yet).

        `threads` is how many threads may use the store at once: each can hold a connection,
        and beyond redis-py's default pool size a thread waits for one instead of failing.
        """

        def client(url: str) -> redis.Redis:
            return sync_client(settings, url, max(threads + 8, DEFAULT_POOL_SIZE))

        records = client(settings.redis_url)
        if settings.effective_broker_url == settings.redis_url:
            return cls(records, records, shared=True)
        return cls(records, client(settings.effective_broker_url), shared=False)

    def script(self, name: str) -> Callable[..., Any]:
        """A Lua script shipped with the producer, registered on the records Redis."""
        return load_script(self.records, "producer.scripts", name)


def load_script(
    client: redis.Redis | redis.asyncio.Redis, package: str, name: str
) -> Callable[..., Any]:
    """The Lua script `name` shipped in `package`, registered on `client` (after lib.lua)."""
    return client.register_script(script_source(package, name))


def script_source(package: str, name: str) -> str:
    """A script's source as Redis runs it: the shared functions of lib.lua, then the script."""
    return _LIBRARY + files(package).joinpath(f"{name}.lua").read_text()


_LIBRARY = files("producer.scripts").joinpath("lib.lua").read_text()


def connection_options(socket_timeout: float) -> dict[str, Any]:
    """How every client of the project talks to Redis, pooled or not, sync or asyncio."""
    return {
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 0),
    }


def sync_client(settings: ProducerSettings, url: str, pool_size: int) -> redis.Redis:
    """A pooled client whose connections note when a command went out.

    `url` names a Redis server, or Sentinels (sentinel://): then the client follows the master
    they know as ZQ_SENTINEL_MASTER, failovers included.
    """
    options = {**connection_options(settings.socket_timeout), "max_connections": pool_size,
               "timeout": settings.socket_timeout}  # fmt: skip
    if is_sentinel_url(url):
        pool = _sentinel_pool(
            settings, url, redis.sentinel.Sentinel, _BlockingSentinelPool,
            connection_class=TrackedSentinelConnection, **options,
        )  # fmt: skip
    else:
        connection_class = _TRACKED.get(url.partition("://")[0], TrackedConnection)
        pool = redis.BlockingConnectionPool.from_url(
            url, connection_class=connection_class, **options
        )
    return redis.Redis(connection_pool=pool)


def async_client(
    settings: ProducerSettings, url: str, pool_size: int | None
) -> redis.asyncio.Redis:
    """A pooled asyncio client whose connections note when a command went out.

    `url` as for `sync_client`. With a `pool_size`, a call beyond that many at once waits for a
    connection; without, the pool opens as many as there are calls at once.
    """
    options = connection_options(settings.socket_timeout)
    if pool_size is not None:
        options |= {"max_connections": pool_size, "timeout": settings.socket_timeout}
    if is_sentinel_url(url):
        pool_class = (redis.asyncio.sentinel.SentinelConnectionPool if pool_size is None
                      else _AsyncBlockingSentinelPool)  # fmt: skip
        pool = _sentinel_pool(
            settings, url, redis.asyncio.sentinel.Sentinel, pool_class,
            connection_class=AsyncTrackedSentinelConnection, **options,
        )  # fmt: skip
    else:
        connection_class = _ASYNC_TRACKED.get(url.partition("://")[0], AsyncTrackedConnection)
        plain_class = (redis.asyncio.ConnectionPool if pool_size is None
                       else redis.asyncio.BlockingConnectionPool)  # fmt: skip
        pool = plain_class.from_url(url, connection_class=connection_class, **options)
    return redis.asyncio.Redis(connection_pool=pool)


def _sentinel_pool(
    settings: ProducerSettings, url: str, sentinel_class: type, pool_class: type, **options: Any
) -> Any:
    """A pool of connections to the master the Sentinels of `url` name (sync or asyncio).

    The Sentinels are asked as the master is: within the socket timeout, without retries.
    """
    address = parse_sentinel_url(url)
    asking = connection_options(settings.socket_timeout)
    sentinels = sentinel_class(address.sentinels, sentinel_kwargs=asking)
    return pool_class(settings.sentinel_master, sentinels, **options, **address.master_options)


async def close_async_client(client: redis.asyncio.Redis) -> None:
    """Close a client of `async_client`: its pool's connections, and those to the Sentinels.

    The pool is the client's own, yet `aclose()` alone would leave its connections open.
    """
    await client.aclose(close_connection_pool=True)
    sentinels = getattr(client.connection_pool, "sentinel_manager", None)
    if sentinels is not None:
        await sentinels.aclose()


@contextmanager
def pinned(client: redis.Redis) -> Iterator[redis.Redis]:
    """`client` bound to one connection of its pool until the block ends.

    WAIT and WAITAOF confirm the writes of the connection they are sent on: a durable enqueue
    writes and waits through this. (It is what `client.client()` gives, without building a
    whole new client for each call.)
    """
    bound = copy.copy(client)
    bound.connection = client.connection_pool.get_connection()
    try:
        yield bound
    finally:
        bound.close()  # the connection goes back to the pool


@asynccontextmanager
async def async_pinned(client: redis.asyncio.Redis) -> AsyncIterator[redis.asyncio.Redis]:
    """`pinned` for redis.asyncio."""
    bound = copy.copy(client)
    bound.connection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        yield bound
    finally:
        await bound.aclose()


@cache
def default_store() -> Store:
    """This process's store, from the environment's settings."""
    return Store.connect(producer_settings())


@contextmanager
def storage_boundary(
    action: str, *, writes: bool = True, enqueued: Sequence[str] = ()
) -> Iterator[None]:
    """Turn any Redis error during `action` into RedisUnavailable or OutcomeUnknown.

    `enqueued` names the jobs stored before this call, for the error to carry (and for a
    StorageError raised inside the block).
    """
    token = _command_sent.set(False)
    try:
        yield
    except StorageError as error:  # raised by the caller's own checks
        error.enqueued = error.enqueued or tuple(enqueued)
        raise
    except redis.RedisError as error:
        failure = _storage_error(action, error, writes=writes)
        failure.enqueued = tuple(enqueued)
        raise failure from error
    finally:
        _command_sent.reset(token)


def _storage_error(action: str, error: redis.RedisError, *, writes: bool) -> StorageError:
    if isinstance(error, redis.OutOfMemoryError):
        why = "Redis is out of memory (maxmemory reached, noeviction)"
    elif isinstance(error, redis.ReadOnlyError):
        why = "Redis is a read-only replica (a failover may be under way)"
    elif isinstance(error, redis.ConnectionError | redis.TimeoutError):
        if writes and _command_sent.get():
            return OutcomeUnknown(
                f"could not {action}: the call reached Redis but its answer did not come back "
                f"({type(error).__name__}: {error}); it may have been stored: retry with the "
                "same idempotency key"
            )
        why = f"Redis is unreachable ({type(error).__name__}: {error})"
    else:
        why = f"Redis refused it ({type(error).__name__}: {error})"
    stored = "; nothing was stored" if writes else ""
    return RedisUnavailable(f"could not {action}: {why}{stored}")
