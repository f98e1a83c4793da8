"""The producer's Redis connections, with redis-py's errors turned into the producer's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import redis

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
    def connect(cls, settings: ProducerSettings) -> Store:
        """Connect to the Redis servers named by the settings (lazily: no I/O yet)."""
        records = _client(settings.redis_url, settings.socket_timeout)
        if settings.effective_broker_url == settings.redis_url:
            return cls(records, records, shared=True)
        broker = _client(settings.effective_broker_url, settings.socket_timeout)
        return cls(records, broker, shared=False)

    def script(self, name: str) -> Callable[..., Any]:
        """A Lua script shipped with the producer, registered on the records Redis."""
        source = files("producer.scripts").joinpath(f"{name}.lua").read_text()
        return self.records.register_script(source)


def _client(url: str, socket_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )


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
