"""`zixflow-queue serve` as a process of its own, with real workers, Redis and the sandbox.

Error answers in detail are in test_service_api.py; here, what only the whole system shows.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from requests.adapters import HTTPAdapter

from tests.support import WorkerProcess, wait_until, wire_message
from zixflow_queue.demo.processes import free_port
from zixflow_queue.demo.services import redis_answers
from zixflow_queue.sandbox import Sandbox

pytestmark = pytest.mark.integration

TOKEN = "service-token-7c1e55"
WRONG_TOKEN = "guessed-token-0b9a3d"


class ServiceProcess:
    """`zixflow-queue serve` on a free port, its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zixflow_queue", "serve", "--port", port, *args],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(pool_maxsize=32))  # as many as threads post
        self.http.headers["Authorization"] = f"Bearer {TOKEN}"

    def wait_ready(self) -> ServiceProcess:
        """Block until /healthz answers; fail with the log if the process exits first."""
        wait_until(
            lambda: self._answers() or self.process.poll() is not None,
            timeout=30,
            what="the service to answer",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"the service exited:\n{self.log_text()[-3000:]}")
        return self

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def post(self, body: Any, path: str = "/v1/messages", **headers: str) -> requests.Response:
        """POST a JSON body with the token (and `Idempotency_Key=...` style extra headers)."""
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        return self.http.post(self.url + path, json=body, headers=named, timeout=10)

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url + path, timeout=10)

    def state(self, job_id: str) -> str:
        return str(self.get(f"/v1/messages/{job_id}").json()["state"])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful stop), then SIGKILL whatever is left."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.http.close()
        self._log.close()


@pytest.fixture
def start_service(
    pipeline_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """Start services on the integration test's Redis and queue; all are stopped after it."""
    started: list[ServiceProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        environment = {**pipeline_env, "ZQ_API_TOKENS": f"{TOKEN},another-token", **(env or {})}
        log = tmp_path / f"service-{len(started)}.log"
        started.append(ServiceProcess(environment, log, *args))
        return started[-1].wait_ready()

    yield start
    for service in started:
        service.stop()


def received(sandbox: Sandbox, job_id: str) -> list[dict[str, Any]]:
    """What the sandbox received for a job."""
    return [entry for entry in sandbox.requests() if entry["job_id"] == job_id]


def sent(service: ServiceProcess, *job_ids: str) -> bool:
    return all(service.state(job_id) == "sent" for job_id in job_ids)


def test_messages_posted_are_sent_and_followed(
    start_service: Callable[..., ServiceProcess],
    start_worker: Callable[..., WorkerProcess],
    sandbox: Sandbox,
) -> None:
    service = start_service()
    start_worker()
    single = service.post({"message": wire_message()})
    items = [{"message": wire_message(to=f"9198000002{n:02d}")} for n in range(5)]
    batch = service.post({"items": items}, path="/v1/messages/batch")
    assert single.status_code == batch.status_code == 202
    job_ids = [single.json()["id"], *batch.json()["ids"]]
    wait_until(lambda: sent(service, *job_ids), what="every message to be sent")
    assert [len(received(sandbox, job_id)) for job_id in job_ids] == [1] * 6
    recipients = [received(sandbox, job_id)[0]["to"] for job_id in batch.json()["ids"]]
    assert recipients == [item["message"]["to"] for item in items]


def test_a_scheduled_message_goes_out_at_its_time_and_a_canceled_one_never(
    start_service: Callable[..., ServiceProcess],
    start_worker: Callable[..., WorkerProcess],
    sandbox: Sandbox,
) -> None:
    service = start_service()
    start_worker()
    due = datetime.now(UTC) + timedelta(seconds=4)  # the canceled one's 3 s: time to cancel
    in_india = due.astimezone(timezone(timedelta(hours=5, minutes=30)))  # any offset will do
    kept = service.post({"message": wire_message(), "sendAt": in_india.isoformat()})
    doomed = service.post(
        {
            "message": wire_message(to="919800000301"),
            "sendAt": (due - timedelta(seconds=1)).isoformat(),
        }
    )
    assert kept.json()["state"] == doomed.json()["state"] == "scheduled"
    canceled = service.http.delete(service.url + doomed.headers["location"], timeout=10)
    assert canceled.json()["state"] == "canceled"

    kept_id = kept.json()["id"]
    wait_until(lambda: sent(service, kept_id), what="the scheduled message to be sent")
    (arrival,) = received(sandbox, kept_id)
    assert arrival["t"] >= due.timestamp()  # not before its time
    # The canceled one was due a second before the other, which has gone out: it never did.
    assert not received(sandbox, doomed.json()["id"])
    assert service.state(doomed.json()["id"]) == "canceled"


def test_one_key_from_32_concurrent_requests_makes_one_job(
    start_service: Callable[..., ServiceProcess],
    start_worker: Callable[..., WorkerProcess],
    sandbox: Sandbox,
) -> None:
    service = start_service()
    body = {"message": wire_message(), "sendAt": "2020-01-01T00:00:00Z"}
    with ThreadPoolExecutor(32) as pool:
        answers = list(
            pool.map(lambda _: service.post(body, Idempotency_Key="order-42"), range(32))
        )
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.json()["id"] for answer in answers}) == 1
    other = service.post({"message": wire_message(to="919800000401")}, Idempotency_Key="order-42")
    assert other.status_code == 422
    start_worker()
    job_id = answers[0].json()["id"]
    wait_until(lambda: sent(service, job_id), what="the message to be sent")
    assert len(sandbox.requests()) == 1


def test_while_redis_is_down_or_full_the_service_answers_503_then_recovers(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    redis_server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: redis_answers(url), timeout=20, what="the private Redis")
        service = start_service(env={"REDIS_URL": url})
        assert service.post({"message": wire_message()}).status_code == 202
        redis_server.terminate()
        redis_server.wait(timeout=10)

        down = service.post({"message": wire_message()})
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert int(down.headers["retry-after"]) > 0
        assert service.get("/readyz").status_code == 503
        assert service.get("/healthz").status_code == 200

        redis_server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_until(lambda: service.get("/readyz").status_code == 200, what="ready again")
        assert service.post({"message": wire_message()}).status_code == 202

        with redis.Redis.from_url(url) as client:
            client.config_set("maxmemory", 1)  # full: every write refused (noeviction)
            full = service.post({"message": wire_message()})
            client.config_set("maxmemory", 0)
        assert full.status_code == 503
        assert "full" in full.json()["detail"]
        assert int(full.headers["retry-after"]) > 0
    finally:
        redis_server.terminate()
        redis_server.wait(timeout=10)


def test_tokens_never_appear_in_the_output(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service()
    assert service.post({"message": wire_message()}).status_code == 202
    wrong = requests.get(
        f"{service.url}/openapi.json",
        timeout=10,
        headers={"Authorization": f"Bearer {WRONG_TOKEN}"},
    )
    assert wrong.status_code == 401
    assert service.post({"message": {"to": "1"}}).status_code == 422
    service.stop()
    output = service.log_text()
    assert '"POST /v1/messages HTTP/1.1" 202' in output  # requests are logged, tokens are not
    assert TOKEN not in output
    assert WRONG_TOKEN not in output


def test_serve_refuses_to_start_without_a_token(pipeline_env: dict[str, str]) -> None:
    env = {key: value for key, value in os.environ.items() if key != "ZQ_API_TOKENS"}
    run = subprocess.run(
        [sys.executable, "-m", "zixflow_queue", "serve", "--port", str(free_port())],
        env={**env, **pipeline_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1
    assert "ZQ_API_TOKENS" in run.stderr


def test_several_processes_serve_one_port(start_service: Callable[..., ServiceProcess]) -> None:
    service = start_service("--workers", "2", "--no-access-log")
    answers = [service.post({"message": wire_message(to=f"9198000005{n:02d}")}) for n in range(20)]
    assert {answer.status_code for answer in answers} == {202}
    wait_until(
        lambda: service.log_text().count("Application startup complete") == 2,
        what="both processes to start",
    )
    assert service.get("/openapi.json").status_code == 200


def test_a_body_is_refused_while_it_arrives(start_service: Callable[..., ServiceProcess]) -> None:
    """Chunked, without Content-Length and never finished: 413 comes once the limit is passed."""
    service = start_service(env={"ZQ_MAX_BODY_BYTES": "2048"})
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for _ in range(3):  # 3 KiB in all, and the body's last chunk is never sent
            connection.sendall(b"400\r\n" + b" " * 1024 + b"\r\n")
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        assert answer.status == 413
        assert b"ZQ_MAX_BODY_BYTES" in answer.read()
