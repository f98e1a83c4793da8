"""The HTTP client for Zixflow's send endpoint: asyncio and aiohttp, many sends in flight."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from worker.errors import ConfigurationError
from worker.outcomes import EXCEPTION_TYPES, Outcome, classify_exception, classify_response

SEND_PATH = "/api/v1/campaign/whatsapp/message/send"

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_REDACTED = b"[redacted]"


class ZixflowClient:
    """Posts messages to Zixflow and says how each send went; never raises for HTTP trouble."""

    __slots__ = ("_headers", "_proxy", "_secret", "_session", "_timeout", "_url")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        if not api_key.strip():
            raise ConfigurationError("the Zixflow API key is empty")
        self._url = send_url(base_url)
        self._session = session
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._secret = api_key.encode()
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout)
        self._proxy = _proxy_for(self._url)

    @property
    def url(self) -> str:
        """Where messages are posted."""
        return str(self._url)

    def __repr__(self) -> str:
        return f"ZixflowClient(url={self.url!r})"

    async def close(self) -> None:
        """Close the session and its connections."""
        await self._session.close()

    async def send(self, payload: Mapping[str, Any], *, job_id: str) -> Outcome:
        """POST one message; `job_id` goes out as X-Request-ID so retries can be correlated."""
        try:
            async with self._session.post(
                self._url,
                data=_encode(payload).encode(),
                headers={**self._headers, "X-Request-ID": job_id},
                timeout=self._timeout,
                proxy=self._proxy,
                # A redirect means a wrong ZIXFLOW_BASE_URL, and following one turns the POST
                # into a GET: report it as the failure it is.
                allow_redirects=False,
            ) as response:
                content = await response.read()
        except EXCEPTION_TYPES as error:
            return classify_exception(error)
        if self._secret in content:  # a server echoing the key must not put it in job records
            content = content.replace(self._secret, _REDACTED)
        return classify_response(response.status, response.headers, content)


def send_url(base_url: str) -> URL:
    """The send endpoint under ZIXFLOW_BASE_URL, or a clear error if that is not an http(s) URL."""
    try:
        url = URL(base_url.rstrip("/") + SEND_PATH)
    except ValueError as error:
        raise ConfigurationError(f"ZIXFLOW_BASE_URL is not a usable URL: {error}") from None
    if url.scheme not in {"http", "https"} or not url.host:
        raise ConfigurationError(
            f"ZIXFLOW_BASE_URL is not a usable URL: {base_url!r} needs http:// or https:// "
            "and a host"
        )
    return url


def open_session(pool_size: int) -> aiohttp.ClientSession:
    """A session keeping up to `pool_size` connections alive; call it on the running loop.

    Proxies come from the environment once, when the client is made (`_proxy_for`); the
    session itself ignores the environment, so a netrc entry for the Zixflow host can never
    replace the bearer key.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=pool_size, limit_per_host=0),
        trust_env=False,
    )


def _proxy_for(url: URL) -> str | None:
    if url.host is None or urllib.request.proxy_bypass(url.host):
        return None
    return urllib.request.getproxies().get(url.scheme)
