"""A worker with ZQ_LOG_FORMAT=json: one JSON object per log line, fields for jobs, no key."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from producer import Producer
from tests.support import WorkerProcess, final_status, wait_until, wire_message

pytestmark = pytest.mark.integration

KEY = "zx/live+9Kp/Vq-7c1e"


class EchoingZixflow(BaseHTTPRequestHandler):
    """Refuses every send, echoing the key it was given, raw and JSON-escaped as PHP does."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        escaped = key.replace("/", "\\/")
        body = (f'{{"status": false, "message": "Unauthorised: token {escaped} is not valid", '
                f'"token": "{escaped}"}}').encode()  # fmt: skip
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        """Quiet: the test reads the worker's log, not this server's."""


@pytest.fixture
def echoing_zixflow() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingZixflow)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every log line parsed (Celery's banner, printed before logging starts, is no log line)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_worker_logs_json_lines_with_the_job_and_never_the_key(
    start_worker: Callable[..., WorkerProcess],
    producer_for: Callable[..., Producer],
    echoing_zixflow: str,
) -> None:
    env = {"ZQ_LOG_FORMAT": "json", "ZIXFLOW_API_KEY": KEY, "ZIXFLOW_BASE_URL": echoing_zixflow}
    worker = start_worker(env=env)
    producer = producer_for()
    job_id = producer.enqueue(wire_message())

    assert final_status(producer, job_id).state == "failed"
    lines = wait_until(
        lambda: [line for line in json_lines(worker.log_text()) if line.get("job_id") == job_id],
        what="the failure's log line",
    )

    (failure,) = lines
    assert failure["level"] == "ERROR"  # a refused key is an error, not a warning
    assert (failure["attempt"], failure["outcome"]) == (1, "credentials")
    assert isinstance(failure["duration_ms"], float)
    assert failure["message"] == (
        f"job {job_id} failed: HTTP 401: Unauthorised: token [redacted] is not valid"
    )
    everything = json_lines(worker.log_text())
    assert any(line["message"].endswith(" ready.") for line in everything)  # Celery's own
    assert {"time", "level", "logger", "message"} <= set(everything[0])
    worker.terminate()
    assert KEY not in worker.log_text()
    assert KEY.replace("/", "\\/") not in worker.log_text()
