"""The HTTP client for Zixflow's send endpoint: asyncio and aiohttp, many sends in flight."""

from __future__ import annotations

import urllib.request
from dataclasses import replace

import aiohttp
from yarl import URL

from producer.errors import ConfigurationError
from worker.outcomes import Outcome, classify_exception, classify_response

SEND_PATH = "/api/v1/campaign/whatsapp/message/send"

ANSWER_LIMIT = 64 * 1024
"""Bytes of an answer read at most: Zixflow's answers are tiny, an endless one is not read."""


class ZixflowClient:
    """Posts messages to Zixflow and says how each send went; never raises for a send."""

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
        self._secret = api_key
        # A deadline for the whole send: a trickling answer cannot outlive it.
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout, sock_connect=connect_timeout,
            sock_read=read_timeout,
        )  # fmt: skip
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

    async def send(self, body: bytes, *, job_id: str) -> Outcome:
        """POST one message (its JSON); `job_id` goes out as X-Request-ID, for correlation."""
        try:
            async with self._session.post(
                self._url,
                data=body,
                headers={**self._headers, "X-Request-ID": job_id},
                timeout=self._timeout,
                proxy=self._proxy,
                # A redirect means a wrong ZIXFLOW_BASE_URL, and following one turns the POST
                # into a GET: report it as the failure it is.
                allow_redirects=False,
            ) as response:
                content, whole = await _read_capped(response.content, ANSWER_LIMIT)
                status, headers = response.status, response.headers
        except Exception as error:  # every failure becomes an outcome (see EXCEPTION_KINDS)
            return classify_exception(error)
        if not whole:
            outcome = classify_response(status, headers, b"")
            return replace(outcome, reason=f"HTTP {status}: answer over {ANSWER_LIMIT} bytes")
        return classify_response(status, headers, content, secret=self._secret)


async def _read_capped(stream: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of an answer; False when there was more (the rest is left unread)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await stream.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"", False


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
