"""Signed status events, end to end: real workers, Redis, the sandbox and a receiving app."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from standardwebhooks import Webhook

from producer import InvalidEvent, Producer, ValidationError, verify_event
from tests.support import WorkerProcess, final_status, wait_until, wire_message
from zixflow_queue.sandbox import FaultPlan, Sandbox

pytestmark = pytest.mark.integration
Start = Callable[..., WorkerProcess]
SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 bytes, no more").decode()


@dataclass
class Received:
    """One POST the receiving app got."""

    headers: dict[str, str]
    body: str

    def verified(self) -> dict[str, Any]:
        """The event, checked the way any Standard Webhooks receiver checks it."""
        payload: dict[str, Any] = Webhook(SECRET).verify(self.body, self.headers)
        return payload


class Receiver:
    """The app's callback endpoint: records each POST, answers with the scripted status."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[int] = []
        self.hold = threading.Event()  # while set, answers wait
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.received.append(Received(dict(self.headers), body))
                while receiver.hold.is_set():
                    receiver.hold.wait(0.05)  # a slow app, until the test lets go
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/zixflow"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, job_id: str) -> list[Received]:
        """What arrived about one job."""
        return [r for r in self.received if json.loads(r.body)["data"]["job_id"] == job_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    app = Receiver()
    yield app
    app.hold.clear()
    app.server.shutdown()
    app.server.server_close()


@pytest.fixture
def event_env(pipeline_env: dict[str, str]) -> dict[str, str]:
    pipeline_env["ZQ_WEBHOOK_SECRET"] = SECRET
    return pipeline_env


def test_a_sent_job_posts_a_signed_event(
    producer_for: Callable[..., Producer], start_worker: Start, receiver: Receiver,
    event_env: dict[str, str],
) -> None:  # fmt: skip
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(), callback_url=receiver.url)
    assert final_status(producer, job_id).state == "sent"

    wait_until(lambda: receiver.events(job_id), what="the event")
    (received,) = receiver.events(job_id)
    event = received.verified()
    assert event["type"] == "message.sent"
    assert event["data"]["job_id"] == job_id and event["data"]["state"] == "sent"
    assert received.headers["webhook-id"] == f"{job_id}.message.sent"
    assert received.headers["webhook-signature"].startswith("v1,")
    assert verify_event(received.body, received.headers, SECRET) == event
    forged = received.body.replace('"sent"', '"failed"')
    with pytest.raises(InvalidEvent):
        verify_event(forged, received.headers, SECRET)


def test_a_failing_receiver_gets_the_same_event_again(
    producer_for: Callable[..., Producer], start_worker: Start, receiver: Receiver,
    event_env: dict[str, str], real_redis: redis.Redis,
) -> None:  # fmt: skip
    receiver.script = [500, 503]
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(), callback_url=receiver.url)
    wait_until(lambda: len(receiver.events(job_id)) == 3, timeout=30, what="three tries")
    first, second, third = receiver.events(job_id)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers[
        "webhook-id"]  # fmt: skip
    assert first.body == second.body == third.body
    assert third.verified()["type"] == "message.sent"
    stats = real_redis.hgetall(producer.keys.stats)
    wait_until(lambda: real_redis.hget(producer.keys.stats, "events:delivered") == "1")
    assert stats.get("events:retry") == "2"


def test_failed_and_canceled_jobs_post_their_events_to_the_deployments_url(
    producer_for: Callable[..., Producer], start_worker: Start, receiver: Receiver,
    event_env: dict[str, str], sandbox: Sandbox,
) -> None:  # fmt: skip
    event_env["ZQ_CALLBACK_URL"] = receiver.url
    sandbox.configure(FaultPlan(script={"919800000003": ["window"]}))
    producer = producer_for(callback_url=receiver.url)
    canceled = producer.enqueue(wire_message(), send_at=time.time() + 60)
    assert producer.cancel(canceled)
    start_worker()
    failed = producer.enqueue(wire_message(to="919800000003"))
    wait_until(lambda: receiver.events(failed) and receiver.events(canceled), what="events")
    assert receiver.events(failed)[0].verified()["type"] == "message.failed"
    event = receiver.events(canceled)[0].verified()
    assert event["type"] == "message.canceled" and event["data"]["state"] == "canceled"


def test_a_receiver_refusing_the_event_fails_it_for_good(
    producer_for: Callable[..., Producer], start_worker: Start, receiver: Receiver,
    event_env: dict[str, str], real_redis: redis.Redis,
) -> None:  # fmt: skip
    receiver.script = [410]
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(), callback_url=receiver.url)
    event_id = f"{job_id}.message.sent"
    wait_until(lambda: real_redis.zscore(producer.keys.events_dead, event_id), what="failed")
    assert len(receiver.events(job_id)) == 1
    assert (
        real_redis.hget(producer.keys.event(event_id), "error") == "HTTP 410 from the callback URL"
    )


def test_a_killed_worker_loses_no_event(
    producer_for: Callable[..., Producer], start_worker: Start, receiver: Receiver,
    event_env: dict[str, str],
) -> None:  # fmt: skip
    env = {"ZQ_HEARTBEAT_TIMEOUT": "5"}
    victim = start_worker(env=env)
    producer = producer_for()
    receiver.hold.set()  # the app is slow: the event is in flight when the worker dies
    job_id = producer.enqueue(wire_message(), callback_url=receiver.url)
    wait_until(lambda: receiver.events(job_id), what="the first try")
    victim.kill()
    receiver.hold.clear()
    start_worker(env=env)
    wait_until(lambda: len(receiver.events(job_id)) >= 2, timeout=30, what="the event again")
    ids = {received.headers["webhook-id"] for received in receiver.events(job_id)}
    assert ids == {f"{job_id}.message.sent"}


def test_private_callback_hosts_are_refused_when_asked(
    producer_for: Callable[..., Producer], start_worker: Start, receiver: Receiver,
    event_env: dict[str, str], real_redis: redis.Redis,
) -> None:  # fmt: skip
    event_env["ZQ_CALLBACK_URL"] = receiver.url  # a loopback URL, refused when sending
    start_worker(env={"ZQ_CALLBACK_HOSTS": "public"})
    producer = producer_for()
    with pytest.raises(ValidationError, match="callback_url"):
        producer_for(callback_hosts="public").enqueue(wire_message(), callback_url=receiver.url)
    job_id = producer.enqueue(wire_message())
    event_id = f"{job_id}.message.sent"
    wait_until(lambda: real_redis.zscore(producer.keys.events_dead, event_id), what="refused")
    assert receiver.received == []
    assert "private host" in str(real_redis.hget(producer.keys.event(event_id), "error"))
