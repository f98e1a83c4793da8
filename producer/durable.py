"""Durable enqueue (ZQ_DURABLE): once its jobs are written, a producer waits until Redis has
fsynced them to its append-only file (WAITAOF, Redis 7.2+) or copied them to replicas (WAIT).

Both commands confirm the writes of the connection they are sent on, so a producer writes and
waits on one connection (`producer.store.pinned`), and sends the wait as a round trip of its
own: pipelined right behind the writes, the server releases it only on its next cron tick,
about 100 ms later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from producer.errors import ConfigurationError, OutcomeUnknown
from producer.settings import ProducerSettings


@dataclass(frozen=True)
class Durability:
    """What a producer waits for after its writes, and what the answer means."""

    setting: str
    replicas: int
    timeout: float

    @classmethod
    def of(cls, settings: ProducerSettings) -> Durability | None:
        """The durability ZQ_DURABLE asks for; None when it is off."""
        if settings.durable == "off":
            return None
        return cls(settings.durable, settings.durable_replicas, settings.durable_timeout)

    @property
    def command(self) -> tuple[str | int, ...]:
        """WAITAOF numlocal numreplicas timeout, or WAIT numreplicas timeout (milliseconds)."""
        milliseconds = max(1, round(self.timeout * 1000))
        if self.setting == "aof":
            return ("WAITAOF", 1, 0, milliseconds)
        return ("WAIT", self.replicas, milliseconds)

    def wait(self, client: redis.Redis, replay: Sequence[Any]) -> None:
        """Wait until the writes of `client`'s connection are durable, or raise."""
        try:
            if replay:
                client.execute_command(*replay)  # type: ignore[no-untyped-call]
            reply = client.execute_command(*self.command)  # type: ignore[no-untyped-call]
        except redis.ResponseError as error:
            raise self.refused(error) from error
        self.confirm(reply)

    async def wait_async(self, client: redis.asyncio.Redis, replay: Sequence[Any]) -> None:
        """`wait` for redis.asyncio."""
        try:
            if replay:
                await client.execute_command(*replay)  # type: ignore[no-untyped-call]
            reply = await client.execute_command(*self.command)  # type: ignore[no-untyped-call]
        except redis.ResponseError as error:
            raise self.refused(error) from error
        self.confirm(reply)

    def confirm(self, reply: Any) -> None:
        """Raise OutcomeUnknown unless Redis counted every copy asked for."""
        wanted, counted = (1, reply[0]) if self.setting == "aof" else (self.replicas, reply)
        if int(counted) >= wanted:
            return
        what = "fsynced to Redis's append-only file" if self.setting == "aof" else (
            f"copied to {self.replicas} replica(s) (only {counted} confirmed)"
        )  # fmt: skip
        raise OutcomeUnknown(
            f"could not enqueue the jobs durably: they were stored but not {what} within "
            f"ZQ_DURABLE_TIMEOUT={self.timeout} s, so a Redis crash or failover may still lose "
            "them; retry with the same idempotency key"
        )

    def refused(self, error: redis.ResponseError) -> ConfigurationError:
        """The error for a Redis that cannot confirm durability at all."""
        needs = ("Redis 7.2+ (WAITAOF) with appendonly yes" if self.setting == "aof"
                 else "a Redis master (WAIT)")  # fmt: skip
        return ConfigurationError(
            f"ZQ_DURABLE={self.setting} needs {needs}; this Redis answered: {str(error).strip()} "
            "(the jobs were stored, not confirmed durable)"
        )
