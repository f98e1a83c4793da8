"""The producer's Redis connections, with redis-py's errors turned into the producer's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import redis
import redis.asyncio

from producer.errors import RedisUnavailable
from producer.settings import ProducerSettings, producer_settings


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
            return _client(url, settings.socket_timeout, max(threads + 8, DEFAULT_POOL_SIZE))

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
    """The Lua script `name` shipped in `package`, registered on `client`."""
    return client.register_script(files(package).joinpath(f"{name}.lua").read_text())


def connection_options(socket_timeout: float) -> dict[str, Any]:
    """How every client of the project talks to Redis, pooled or not, sync or asyncio."""
    return {
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "health_check_interval": 30,
    }


DEFAULT_POOL_SIZE = 100


def _client(url: str, socket_timeout: float, pool_size: int) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=socket_timeout, **connection_options(socket_timeout)
    )
    return redis.Redis(connection_pool=pool)


@cache
def default_store() -> Store:
    """This process's store, from the environment's settings."""
    return Store.connect(producer_settings())


@contextmanager
def redis_errors(action: str) -> Iterator[None]:
    """Report Redis being unreachable during `action` as RedisUnavailable."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise RedisUnavailable(
            f"could not {action}: Redis is unreachable ({error.__class__.__name__}: {error})"
        ) from error
