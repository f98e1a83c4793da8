"""The HTTP client for Zixflow's send endpoint, over an injected `requests.Session`."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from worker.errors import ConfigurationError
from worker.outcomes import Outcome, classify_exception, classify_response

SEND_PATH = "/api/v1/campaign/whatsapp/message/send"

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_REDACTED = b"[redacted]"


class ZixflowClient:
    """Posts messages to Zixflow and says how each send went; never raises for HTTP trouble."""

    __slots__ = ("_secret", "_session", "_template", "_timeout", "url")

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        if not api_key.strip():
            raise ConfigurationError("the Zixflow API key is empty")
        self._session = session
        self.url = base_url.rstrip("/") + SEND_PATH
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        # Prepared once: preparing every request anew (cookies, hooks, auth, header merging)
        # cost a quarter of a send's CPU time.
        try:
            self._template = session.prepare_request(requests.Request("POST", self.url, headers))
        except requests.RequestException as error:
            raise ConfigurationError(f"ZIXFLOW_BASE_URL is not a usable URL: {error}") from None
        self._secret = api_key.encode()
        self._timeout = (connect_timeout, read_timeout)

    def __repr__(self) -> str:
        return f"ZixflowClient(url={self.url!r})"

    def send(self, payload: Mapping[str, Any], *, job_id: str) -> Outcome:
        """POST one message; `job_id` goes out as X-Request-ID so retries can be correlated."""
        request = self._template.copy()
        request.headers["X-Request-ID"] = job_id
        request.prepare_body(_encode(payload).encode(), None)
        try:
            response = self._session.send(
                request,
                timeout=self._timeout,
                # A redirect means a wrong ZIXFLOW_BASE_URL, and following one turns the POST
                # into a GET: report it as the failure it is.
                allow_redirects=False,
            )
            content = response.content
        except requests.RequestException as error:
            return classify_exception(error)
        if self._secret in content:  # a server echoing the key must not put it in job records
            content = content.replace(self._secret, _REDACTED)
        return classify_response(response.status_code, response.headers, content)


def make_session(pool_size: int) -> requests.Session:
    """A session keeping up to `pool_size` connections alive, with no retries of its own.

    The environment's proxy settings are read once here. Left to requests, they (and
    ~/.netrc) would be looked up again on every request, a fifth of a send's CPU time, and
    a netrc entry for the Zixflow host could replace the bearer key.
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies = urllib.request.getproxies()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
