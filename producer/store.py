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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from producer.errors import OutcomeUnknown, RedisUnavailable, StorageError
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


_ASYNC_TRACKED = {"redis": AsyncTrackedConnection, "rediss": AsyncTrackedSSLConnection,
                  "unix": AsyncTrackedUnixConnection}  # fmt: skip


class TrackedConnection(_Tracked, redis.Connection):
    """A TCP connection that notes when a command went out."""


class TrackedSSLConnection(_Tracked, redis.SSLConnection):
    """A TLS connection that notes when a command went out."""


class TrackedUnixConnection(_Tracked, redis.UnixDomainSocketConnection):
    """A Unix-socket connection that notes when a command went out."""


_TRACKED = {"redis": TrackedConnection, "rediss": TrackedSSLConnection,
            "unix": TrackedUnixConnection}  # fmt: skip


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
            return sync_client(url, settings.socket_timeout, max(threads + 8, DEFAULT_POOL_SIZE))

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


def sync_client(url: str, socket_timeout: float, pool_size: int) -> redis.Redis:
    """A pooled client whose connections note when a command went out."""
    scheme = url.partition("://")[0]
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=socket_timeout,
        connection_class=_TRACKED.get(scheme, TrackedConnection),
        **connection_options(socket_timeout),
    )
    return redis.Redis(connection_pool=pool)


def async_client(url: str, socket_timeout: float, pool_size: int) -> redis.asyncio.Redis:
    """A pooled asyncio client whose connections note when a command went out."""
    scheme = url.partition("://")[0]
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=socket_timeout,
        connection_class=_ASYNC_TRACKED.get(scheme, AsyncTrackedConnection),
        **connection_options(socket_timeout),
    )
    return redis.asyncio.Redis(connection_pool=pool)


@cache
def default_store() -> Store:
    """This process's store, from the environment's settings."""
    return Store.connect(producer_settings())


@contextmanager
def storage_boundary(
    action: str, *, writes: bool = True, enqueued: Sequence[str] = ()
) -> Iterator[None]:
    """Turn any Redis error during `action` into RedisUnavailable or OutcomeUnknown.

    `enqueued` names the jobs stored before this call, for the error to carry.
    """
    token = _command_sent.set(False)
    try:
        yield
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
