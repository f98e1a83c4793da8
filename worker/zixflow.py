"""The HTTP client for Zixflow's send endpoint, over an injected `requests.Session`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from worker.outcomes import Outcome, classify_exception, classify_response

SEND_PATH = "/api/v1/campaign/whatsapp/message/send"


class ZixflowClient:
    """Posts messages to Zixflow and says how each send went; never raises for HTTP trouble."""

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._session = session
        self.url = base_url.rstrip("/") + SEND_PATH
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._timeout = (connect_timeout, read_timeout)

    def __repr__(self) -> str:
        return f"ZixflowClient(url={self.url!r})"

    def send(self, payload: Mapping[str, Any], *, job_id: str) -> Outcome:
        """POST one message; `job_id` goes out as X-Request-ID so retries can be correlated."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            response = self._session.post(
                self.url,
                data=body,
                headers={**self._headers, "X-Request-ID": job_id},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return classify_exception(error)
        return classify_response(response.status_code, response.headers, response.content)


def make_session(pool_size: int) -> requests.Session:
    """A session keeping up to `pool_size` connections alive, with no retries of its own."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
