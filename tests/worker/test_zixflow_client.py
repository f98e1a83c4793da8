"""The HTTP client against real loopback servers: the wire, the answers, and network trouble."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from producer.errors import ConfigurationError
from worker.outcomes import Outcome, OutcomeKind
from worker.zixflow import ANSWER_LIMIT, SEND_PATH, ZixflowClient, open_session

KEY = "zx-live-4f9c2b7e1d"
PAYLOAD = {
    "to": "919876543210",
    "phoneId": "1234567890",
    "type": "interactive",
    "interactive": {
        "type": "button",
        "body": {"text": "Confirm your order? ✅"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]},
    },
    "source": "API",
    "linkWithRecord": False,
    "submissionStatus": False,
}
SENT = {"status": True, "message": "Message sent successfully"}


def wire(payload: dict[str, Any]) -> bytes:
    """A message's request body, as the courier sends it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Answer:
    """What the scripted server says to one request."""

    status: int = 200
    body: object = dataclasses.field(default_factory=lambda: SENT)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def response(self) -> web.Response:
        raw = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        return web.Response(status=self.status, body=raw, headers=self.headers)


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Exchange:
    """The outcomes of a client's sends and the requests the server saw."""

    outcomes: list[Outcome]
    seen: list[Seen]
    client: ZixflowClient


def exchange(
    *answers: Answer,
    sends: list[tuple[dict[str, Any], str]] | None = None,
    base_path: str = "/",
    base_url: str | None = None,
    key: str = KEY,
    **timeouts: float,
) -> Exchange:
    """Send through a fresh client to a server answering `answers` in turn (or to `base_url`)."""
    sends = sends or [(PAYLOAD, "job-1")] * max(1, len(answers))
    script = list(answers)
    seen: list[Seen] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(Seen(request.path, dict(request.headers), await request.read()))
        return script.pop(0).response()

    async def scenario() -> Exchange:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        async with TestServer(app, host="127.0.0.1") as server, open_session(4) as session:
            client = ZixflowClient(
                session,
                base_url=base_url or str(server.make_url(base_path)),
                api_key=key,
                **{"connect_timeout": 3.0, "read_timeout": 45.0, **timeouts},
            )
            outcomes = [
                await client.send(wire(payload), job_id=job_id) for payload, job_id in sends
            ]
        return Exchange(outcomes, seen, client)

    return asyncio.run(scenario())


def test_success() -> None:
    (outcome,) = exchange(Answer()).outcomes
    assert (outcome.kind, outcome.status_code, outcome.body) == (OutcomeKind.SENT, 200, SENT)


def test_request_on_the_wire() -> None:
    (request,) = exchange(Answer(), sends=[(PAYLOAD, "job-42")]).seen

    assert request.path == SEND_PATH
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Request-ID"] == "job-42"
    expected = json.dumps(PAYLOAD, separators=(",", ":"), ensure_ascii=False).encode()
    assert request.body == expected
    assert request.headers["Content-Length"] == str(len(expected))


@pytest.mark.parametrize(
    ("base_path", "path"),
    [("", SEND_PATH), ("/", SEND_PATH), ("///", SEND_PATH), ("/zixflow/", "/zixflow" + SEND_PATH)],
)
def test_url_is_base_plus_send_path(base_path: str, path: str) -> None:
    result = exchange(Answer(), base_path=base_path)
    assert result.outcomes[0].kind is OutcomeKind.SENT
    assert result.seen[0].path == path
    assert result.client.url.endswith(path)


def test_each_send_carries_its_own_request_id() -> None:
    payload = {**PAYLOAD, "to": "14155550100"}
    sends = [(payload, job_id) for job_id in ("job-a", "job-b", "job-c")]

    seen = exchange(Answer(), Answer(), Answer(), sends=sends).seen

    assert [request.headers["X-Request-ID"] for request in seen] == ["job-a", "job-b", "job-c"]
    assert all(b'"to":"14155550100"' in request.body for request in seen)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (500, {"status": False, "message": "(#2) Service temporarily unavailable :: later"},
         OutcomeKind.TRANSIENT),
        (503, None, OutcomeKind.TRANSIENT),
        (401, {"status": False, "message": "Unauthorised"}, OutcomeKind.CREDENTIALS),
        (400, {"status": False, "message": "Invalid data Provided"}, OutcomeKind.PERMANENT),
        (200, {"status": False, "message": "Invalid data Provided"}, OutcomeKind.PERMANENT),
    ],
)  # fmt: skip
def test_failure_status_is_classified(
    status: int, body: dict[str, object] | None, kind: OutcomeKind
) -> None:
    (outcome,) = exchange(Answer(status, body)).outcomes
    assert (outcome.kind, outcome.status_code, outcome.body) == (kind, status, body)


def test_failure_is_classified() -> None:
    message = "(#131047) Re-engagement message :: more than 24 hours have passed"

    (outcome,) = exchange(Answer(400, {"status": False, "message": message})).outcomes

    assert (outcome.kind, outcome.whatsapp_code) == (OutcomeKind.PERMANENT, 131047)
    assert outcome.reason == f"HTTP 400: {message}"


def test_throttle_carries_retry_after() -> None:
    (outcome,) = exchange(Answer(429, b"", {"Retry-After": "12"})).outcomes
    assert (outcome.kind, outcome.retry_after) == (OutcomeKind.THROTTLED, 12.0)


def test_redirect_is_not_followed() -> None:
    result = exchange(Answer(301, b"", {"Location": "/elsewhere"}))
    assert (result.outcomes[0].kind, result.outcomes[0].status_code) == (OutcomeKind.PERMANENT, 301)
    assert len(result.seen) == 1


@pytest.mark.parametrize("base_url", ["api.zixflow.test", "ftp://api.zixflow.test", "http://"])
def test_bad_base_url_is_refused_up_front(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="ZIXFLOW_BASE_URL"):
        exchange(base_url=base_url)


def test_empty_key_is_refused() -> None:
    async def build() -> None:
        async with open_session(1) as session:
            ZixflowClient(session, base_url="http://x.test", api_key=" ",
                          connect_timeout=1, read_timeout=1)  # fmt: skip

    with pytest.raises(ConfigurationError, match="key is empty"):
        asyncio.run(build())


def test_a_key_no_header_can_carry_ends_the_send_with_an_outcome() -> None:
    """The worker refuses such a key at start; a client given one still never raises."""
    key = KEY + "\n"
    result = exchange(Answer(), key=key)  # the request never leaves: nothing to answer

    (outcome,) = result.outcomes
    assert outcome.kind is OutcomeKind.PERMANENT and not outcome.kind.retryable
    assert result.seen == []
    assert KEY not in outcome.reason


def test_key_never_shows() -> None:
    echo = {"status": False, "message": f"Unauthorised: token {KEY} expired", "token": KEY}

    result = exchange(Answer(401, echo))

    (outcome,) = result.outcomes
    assert outcome.kind is OutcomeKind.CREDENTIALS
    assert KEY not in repr(result.client)
    assert KEY not in repr(outcome)
    for name in (f.name for f in dataclasses.fields(outcome)):
        assert KEY not in json.dumps(getattr(outcome, name), default=str), name
    assert outcome.body is not None and outcome.body["token"] == "[redacted]"


def test_key_echoed_escaped_never_shows() -> None:
    key = "zx/9Kp+Vq/ß-7"
    # PHP escapes "/" as "\/", and a server may escape any character as \uXXXX.
    escaped = key.replace("/", "\\/").replace("ß", "\\u00df").replace("K", "\\u004b")
    body = f'{{"status": false, "message": "Unauthorised: token {escaped} is not valid"}}'

    (outcome,) = exchange(Answer(401, body.encode()), key=key).outcomes

    assert outcome.kind is OutcomeKind.CREDENTIALS
    assert outcome.reason == "HTTP 401: Unauthorised: token [redacted] is not valid"
    assert key not in json.dumps(outcome.body, ensure_ascii=False)


def test_session_pools_without_the_environment() -> None:
    async def inspect() -> tuple[int, bool]:
        async with open_session(17) as session:
            return session.connector.limit, session.trust_env  # type: ignore[union-attr]

    assert asyncio.run(inspect()) == (17, False)


def test_environment_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy named in the environment gets the request meant for the Zixflow host."""

    async def through_proxy() -> tuple[Outcome, list[Seen]]:
        seen: list[Seen] = []

        async def handle(request: web.Request) -> web.Response:
            seen.append(Seen(str(request.url), dict(request.headers), await request.read()))
            return Answer().response()

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        async with TestServer(app, host="127.0.0.1") as server, open_session(2) as session:
            monkeypatch.setenv("http_proxy", str(server.make_url("/")))
            monkeypatch.setenv("no_proxy", "")
            client = ZixflowClient(session, base_url="http://api.zixflow.test",
                                   api_key=KEY, connect_timeout=3, read_timeout=3)  # fmt: skip
            return await client.send(wire(PAYLOAD), job_id="job-1"), seen

    outcome, seen = asyncio.run(through_proxy())
    assert outcome.kind is OutcomeKind.SENT
    assert seen[0].headers["Host"] == "api.zixflow.test"


class Misbehaving:
    """A loopback server that reads each request and then drops it or never answers."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._server = socket.create_server(("127.0.0.1", 0))
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _serve(self) -> None:
        connection, _ = self._server.accept()
        with connection:
            connection.recv(65536)
            if self.mode == "silent":
                self._released.wait(10)
            elif self.mode == "trickle":  # a byte at a time, each well within the read timeout
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                while not self._released.wait(0.1):
                    connection.sendall(b" ")
            elif self.mode == "endless":  # a chunked 200 that never ends
                connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
                with contextlib.suppress(OSError):
                    while not self._released.is_set():
                        connection.sendall(chunk)

    def close(self) -> None:
        self._released.set()
        self._thread.join(10)
        self._server.close()


@pytest.fixture
def misbehaving() -> Iterator[Callable[[str], Misbehaving]]:
    servers: list[Misbehaving] = []

    def start(mode: str) -> Misbehaving:
        servers.append(Misbehaving(mode))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_real_dropped_connection_is_transient(misbehaving: Callable[[str], Misbehaving]) -> None:
    (outcome,) = exchange(base_url=misbehaving("drop").url).outcomes
    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.TRANSIENT,
        "connection failed: ServerDisconnectedError",
    )


def test_real_read_timeout_is_ambiguous(misbehaving: Callable[[str], Misbehaving]) -> None:
    (outcome,) = exchange(base_url=misbehaving("silent").url, read_timeout=0.2).outcomes
    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.AMBIGUOUS,
        "no complete answer, the message may have been sent: SocketTimeoutError",
    )


def test_a_trickling_answer_ends_at_the_send_deadline(
    misbehaving: Callable[[str], Misbehaving],
) -> None:
    started = time.monotonic()
    server = misbehaving("trickle")
    (outcome,) = exchange(base_url=server.url, connect_timeout=0.5, read_timeout=0.5).outcomes
    # The deadline is the connect and read timeouts together (1 s): without it, each byte
    # would reset the read timeout and the send would last as long as the trickle.
    assert time.monotonic() - started < 5
    assert outcome.kind is OutcomeKind.AMBIGUOUS


def test_an_endless_answer_is_read_no_further_than_the_limit(
    misbehaving: Callable[[str], Misbehaving],
) -> None:
    (outcome,) = exchange(base_url=misbehaving("endless").url).outcomes
    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.AMBIGUOUS,
        f"HTTP 200: answer over {ANSWER_LIMIT} bytes",
    )


def test_real_refused_connection_is_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    (outcome,) = exchange(base_url=f"http://127.0.0.1:{port}").outcomes
    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.TRANSIENT,
        "connection failed: ClientConnectorError",
    )
