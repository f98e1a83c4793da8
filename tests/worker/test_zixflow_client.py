"""The HTTP client: what goes on the wire, and that trouble comes back as an outcome."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import requests
import responses
from requests.adapters import HTTPAdapter

from worker.errors import ConfigurationError
from worker.outcomes import OutcomeKind
from worker.zixflow import SEND_PATH, ZixflowClient, make_session

KEY = "zx-live-4f9c2b7e1d"
BASE = "https://api.zixflow.test"
URL = BASE + SEND_PATH
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
ClientFactory = Callable[..., ZixflowClient]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Build clients over fresh sessions, all closed after the test."""
    sessions: list[requests.Session] = []

    def build(base_url: str = BASE + "/", **timeouts: float) -> ZixflowClient:
        sessions.append(make_session(4))
        settings = {"connect_timeout": 3.0, "read_timeout": 45.0, **timeouts}
        return ZixflowClient(sessions[-1], base_url=base_url, api_key=KEY, **settings)

    yield build
    for session in sessions:
        session.close()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def test_success(make_client: ClientFactory, mocked: responses.RequestsMock) -> None:
    answer = {"status": True, "message": "Message sent successfully"}
    mocked.post(URL, json=answer)

    outcome = make_client().send(PAYLOAD, job_id="job-1")

    assert (outcome.kind, outcome.status_code, outcome.body) == (OutcomeKind.SENT, 200, answer)


def test_request_on_the_wire(make_client: ClientFactory, mocked: responses.RequestsMock) -> None:
    mocked.post(URL, json={"status": True, "message": "Message sent successfully"})

    make_client().send(PAYLOAD, job_id="job-42")

    (call,) = mocked.calls
    request = call.request
    assert request.url == URL
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Request-ID"] == "job-42"
    expected = json.dumps(PAYLOAD, separators=(",", ":"), ensure_ascii=False).encode()
    assert request.body == expected
    assert request.headers["Content-Length"] == str(len(expected))
    assert json.loads(expected) == PAYLOAD
    assert request.req_kwargs["timeout"] == (3.0, 45.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        (BASE, URL),
        (BASE + "/", URL),
        (BASE + "///", URL),
        ("http://127.0.0.1:8088/zixflow/", "http://127.0.0.1:8088/zixflow" + SEND_PATH),
    ],
)
def test_url_is_base_plus_send_path(
    make_client: ClientFactory, mocked: responses.RequestsMock, base_url: str, url: str
) -> None:
    mocked.post(url, json={"status": True, "message": "Message sent successfully"})

    client = make_client(base_url)
    outcome = client.send(PAYLOAD, job_id="job-1")

    assert client.url == url
    assert outcome.kind is OutcomeKind.SENT
    assert mocked.calls[0].request.url == url


def test_each_send_carries_its_own_request_id(
    make_client: ClientFactory, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, json={"status": True, "message": "Message sent successfully"})
    client = make_client()

    for job_id in ("job-a", "job-b", "job-c"):
        client.send({**PAYLOAD, "to": "14155550100"}, job_id=job_id)

    assert [call.request.headers["X-Request-ID"] for call in mocked.calls] == [
        "job-a",
        "job-b",
        "job-c",
    ]
    bodies = [call.request.body for call in mocked.calls]
    assert all(isinstance(body, bytes) and b'"to":"14155550100"' in body for body in bodies)


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
    make_client: ClientFactory,
    mocked: responses.RequestsMock,
    status: int,
    body: dict[str, object] | None,
    kind: OutcomeKind,
) -> None:
    mocked.post(URL, status=status, json=body)

    outcome = make_client().send(PAYLOAD, job_id="job-1")

    assert (outcome.kind, outcome.status_code, outcome.body) == (kind, status, body)


def test_failure_is_classified(make_client: ClientFactory, mocked: responses.RequestsMock) -> None:
    message = "(#131047) Re-engagement message :: more than 24 hours have passed"
    mocked.post(URL, status=400, json={"status": False, "message": message})

    outcome = make_client().send(PAYLOAD, job_id="job-1")

    assert (outcome.kind, outcome.whatsapp_code) == (OutcomeKind.PERMANENT, 131047)
    assert outcome.reason == f"HTTP 400: {message}"


def test_throttle_carries_retry_after(
    make_client: ClientFactory, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, status=429, headers={"Retry-After": "12"}, body="")

    outcome = make_client().send(PAYLOAD, job_id="job-1")

    assert (outcome.kind, outcome.retry_after) == (OutcomeKind.THROTTLED, 12.0)


def test_redirect_is_not_followed(
    make_client: ClientFactory, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, status=301, headers={"Location": "https://elsewhere.test/"})

    outcome = make_client().send(PAYLOAD, job_id="job-1")

    assert (outcome.kind, outcome.status_code) == (OutcomeKind.PERMANENT, 301)
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (requests.ConnectionError("connection refused"), OutcomeKind.TRANSIENT),
        (requests.ConnectTimeout("connect timed out"), OutcomeKind.TRANSIENT),
        (requests.ReadTimeout("read timed out"), OutcomeKind.AMBIGUOUS),
        (requests.exceptions.ChunkedEncodingError("broken"), OutcomeKind.AMBIGUOUS),
    ],
    ids=lambda value: type(value).__name__,
)
def test_network_trouble_becomes_an_outcome(
    make_client: ClientFactory,
    mocked: responses.RequestsMock,
    error: requests.RequestException,
    kind: OutcomeKind,
) -> None:
    mocked.post(URL, body=error)
    outcome = make_client().send(PAYLOAD, job_id="job-1")
    assert (outcome.kind, outcome.status_code) == (kind, None)


def test_bad_base_url_is_refused_up_front(make_client: ClientFactory) -> None:
    with pytest.raises(ConfigurationError, match="ZIXFLOW_BASE_URL"):
        make_client(base_url="api.zixflow.test")


def test_key_never_shows(make_client: ClientFactory, mocked: responses.RequestsMock) -> None:
    echo = {"status": False, "message": f"Unauthorised: token {KEY} expired", "token": KEY}
    mocked.post(URL, status=401, json=echo)
    mocked.post(URL, body=requests.ConnectionError(f"failed with Bearer {KEY}"))
    client = make_client()

    outcomes = [client.send(PAYLOAD, job_id="job-1") for _ in range(2)]

    assert [o.kind for o in outcomes] == [OutcomeKind.CREDENTIALS, OutcomeKind.TRANSIENT]
    assert KEY not in repr(client)
    assert KEY not in str(client)
    for outcome in outcomes:
        assert KEY not in repr(outcome)
        for field in dataclasses.fields(outcome):
            assert KEY not in json.dumps(getattr(outcome, field.name), default=str), field.name
    assert outcomes[0].body is not None and outcomes[0].body["token"] == "[redacted]"


def test_empty_key_is_refused() -> None:
    with pytest.raises(ConfigurationError), requests.Session() as session:
        ZixflowClient(session, base_url=BASE, api_key=" ", connect_timeout=1, read_timeout=1)


def test_session_pools_without_retries() -> None:
    with make_session(17) as session:
        adapters = {session.get_adapter(url) for url in ("http://a.test/", "https://a.test/")}
        (adapter,) = adapters
        assert isinstance(adapter, HTTPAdapter)
        assert adapter.max_retries.total == 0
        assert adapter._pool_maxsize == 17  # type: ignore[attr-defined]
        assert adapter._pool_connections == 17  # type: ignore[attr-defined]
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == 17
        assert adapter.poolmanager.pools._maxsize == 17


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


def test_real_dropped_connection_is_transient(
    make_client: ClientFactory, misbehaving: Callable[[str], Misbehaving]
) -> None:
    outcome = make_client(misbehaving("drop").url).send(PAYLOAD, job_id="job-1")
    assert outcome.kind is OutcomeKind.TRANSIENT
    assert outcome.reason == "connection failed: ConnectionError"


def test_real_read_timeout_is_ambiguous(
    make_client: ClientFactory, misbehaving: Callable[[str], Misbehaving]
) -> None:
    client = make_client(misbehaving("silent").url, read_timeout=0.2)
    outcome = client.send(PAYLOAD, job_id="job-1")
    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.AMBIGUOUS,
        "no complete answer, the message may have been sent: ReadTimeout",
    )


def test_real_refused_connection_is_transient(make_client: ClientFactory) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    outcome = make_client(f"http://127.0.0.1:{port}").send(PAYLOAD, job_id="job-1")
    assert outcome.kind is OutcomeKind.TRANSIENT
