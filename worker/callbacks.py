"""POSTing status events to the app's callback URLs, safely: the HTTP side of worker.events.

A callback URL comes from whoever enqueued the job, so the client follows no redirect, gives
each POST a deadline, reads no more than a little of the answer, and, with
ZQ_CALLBACK_HOSTS=public, refuses hosts that resolve to loopback, private or link-local
addresses (checked when connecting, so a name cannot be rebound to one in between).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from producer.validation import names_private_host
from worker.backoff import parse_retry_after

ANSWER_LIMIT = 4096
"""Bytes of a receiver's answer read at most: only its status counts."""
RETRYABLE_STATUSES = frozenset({408, 429})


class PrivateAddress(OSError):
    """A callback host resolves only to addresses ZQ_CALLBACK_HOSTS=public refuses."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one POST of an event went."""

    delivered: bool
    retryable: bool = False
    reason: str = ""
    retry_after: float | None = None


class PublicOnlyResolver(AbstractResolver):
    """Resolves host names to their global addresses only."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's global addresses; PrivateAddress when it has none."""
        found = await self._resolver.resolve(host, port, family)
        public = [entry for entry in found if ipaddress.ip_address(entry["host"]).is_global]
        if not public:
            raise PrivateAddress(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        """Close the resolver underneath."""
        await self._resolver.close()


class CallbackClient:
    """POSTs signed event bodies; says how each POST went, never raises for HTTP trouble."""

    def __init__(self, timeout: float, *, public_only: bool) -> None:
        self._public_only = public_only
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        resolver = PublicOnlyResolver() if public_only else None
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, resolver=resolver), trust_env=False
        )

    async def close(self) -> None:
        """Close the connections."""
        await self._session.close()

    async def post(self, url: str, body: str, headers: dict[str, str]) -> Delivery:
        """POST one event; 2xx delivers it."""
        if self._public_only and names_private_host(url):
            return Delivery(False, reason="the callback URL names a private host")
        try:
            async with self._session.post(
                url, data=body.encode(), headers=headers, timeout=self._timeout,
                allow_redirects=False,
            ) as response:  # fmt: skip
                await response.content.read(ANSWER_LIMIT)
                return _delivery(response.status, response.headers)
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, PrivateAddress):
                return Delivery(False, reason=str(error.os_error))
            return Delivery(False, retryable=True, reason=f"no connection: {type(error).__name__}")
        except Exception as error:  # timeouts and broken answers: the receiver may be back later
            return Delivery(False, retryable=True, reason=f"no answer: {type(error).__name__}")


def _delivery(status: int, headers: Any) -> Delivery:
    if 200 <= status < 300:
        return Delivery(True)
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    retry_after = parse_retry_after(headers.get("Retry-After"))
    return Delivery(False, retryable, f"HTTP {status} from the callback URL", retry_after)
