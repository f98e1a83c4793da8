"""Replies and status events end to end: the service, a worker, Redis, the sandbox and an app.

The service and the worker are processes of their own; the sandbox (Zixflow, and on request its
recipients) and the receiving app serve from threads of the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from producer import Producer
from tests.integration.test_events import SECRET, Receiver
from tests.support import WorkerProcess, final_status, wait_until, wire_message
from tests.zixflow_queue.test_replies import PHONE_ID, tap, zixflow_event
from tests.zixflow_queue.test_service import TOKEN, ServiceProcess
from zixflow_queue.sandbox import ReplyPlan, Sandbox

pytestmark = pytest.mark.integration
Start = Callable[..., WorkerProcess]
HOOK_TOKEN = "hook-token-c41d07"
WRONG_TOKEN = "hook-token-guessed"
PATH = "/v1/zixflow/events"
RECIPIENT = "919876543210"


@pytest.fixture
def env(pipeline_env: dict[str, str], receiver: Receiver) -> dict[str, str]:
    """Workers sign events for the receiver; the service takes Zixflow's with HOOK_TOKEN."""
    pipeline_env.update(ZQ_WEBHOOK_SECRET=SECRET, ZQ_CALLBACK_URL=receiver.url,
                        ZQ_ZIXFLOW_WEBHOOK_TOKEN=HOOK_TOKEN)  # fmt: skip
    return pipeline_env


@pytest.fixture
def service(env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    """`zixflow-queue serve` on the test's Redis and queue."""
    started = ServiceProcess({**env, "ZQ_API_TOKENS": TOKEN}, tmp_path / "service.log")
    try:
        yield started.wait_ready()
    finally:
        started.stop()


def zixflow_posts(service: ServiceProcess, event: Any, token: str = HOOK_TOKEN) -> str:
    """POST an event as Zixflow's webhook does; what became of it."""
    answer = requests.post(service.url + PATH, json=event, timeout=10,
                           headers={"X-Zixflow-Token": token})  # fmt: skip
    assert answer.status_code == 200, answer.text
    outcome: str = answer.json()["outcome"]
    return outcome


def offering(*button_ids: str, to: str = RECIPIENT) -> dict[str, object]:
    """A message to `to` from PHONE_ID (zixflow_event's) offering these buttons, titled after
    their ids' first part."""
    message = wire_message(to=to, phoneId=PHONE_ID)
    message["interactive"]["action"]["buttons"] = [  # type: ignore[index]
        {"type": "reply", "reply": {"id": b, "title": b.split("-")[0].title()}} for b in button_ids
    ]
    return message


def sent_jobs(producer: Producer, *messages: dict[str, object]) -> list[str]:
    """Enqueue each message and wait until it is sent (one at a time: the order of sends)."""
    job_ids = []
    for message in messages:
        job_ids.append(producer.enqueue(message))
        assert final_status(producer, job_ids[-1]).state == "sent"
    return job_ids


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """`zixflow-queue ARGV...` as a process of its own, on the test's deployment."""
    return subprocess.run([sys.executable, "-m", "zixflow_queue", *argv],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip


def replied_events(receiver: Receiver, job_id: str) -> list[dict[str, Any]]:
    """The message.replied events the app received about a job, each verified."""
    events = [received.verified() for received in receiver.events(job_id)]
    return [event for event in events if event["type"] == "message.replied"]


def test_events_without_the_webhook_token_are_refused_and_nothing_is_kept(
    service: ServiceProcess, producer_for: Callable[..., Producer], real_redis: redis.Redis
) -> None:
    event = zixflow_event(tap("yes", "Yes"))
    refused = [
        requests.post(service.url + PATH, json=event, timeout=10, headers=headers)
        for headers in ({}, {"X-Zixflow-Token": WRONG_TOKEN}, {"X-Zixflow-Token": ""})
    ]
    refused.append(service.http.post(service.url + PATH, json=event, timeout=10))  # API token
    assert [answer.status_code for answer in refused] == [401] * 4
    assert real_redis.zcard(producer_for().keys.inbound_index) == 0
    service.stop()
    output = service.log_text()
    assert f'"POST {PATH} HTTP/1.1" 401' in output
    assert HOOK_TOKEN not in output and WRONG_TOKEN not in output


def test_a_reply_lands_on_the_job_that_offered_the_button_among_several_to_one_recipient(
    service: ServiceProcess, start_worker: Start, producer_for: Callable[..., Producer],
    env: dict[str, str],
) -> None:  # fmt: skip
    start_worker()
    producer = producer_for()
    offers = [offering(f"yes-{n}", f"no-{n}") for n in (1, 2, 3)]
    first, second, third = sent_jobs(producer, *offers)
    assert zixflow_posts(service, zixflow_event(tap("no-2", "No"))) == "matched"

    status = service.get(f"/v1/messages/{second}").json()
    assert (status["reply"]["id"], status["reply"]["title"]) == ("no-2", "No")
    assert status["reply"]["at"] == "2025-12-01T14:00:00.123000+00:00"  # when it was tapped
    assert [service.get(f"/v1/messages/{j}").json()["reply"] for j in (first, third)] == [None] * 2
    shown = cli(env, "status", second)
    assert shown.returncode == 0, shown.stderr
    assert "\treply=No" in shown.stdout


def test_a_repeated_event_id_counts_once(
    service: ServiceProcess, start_worker: Start, producer_for: Callable[..., Producer],
    receiver: Receiver, real_redis: redis.Redis,
) -> None:  # fmt: skip
    start_worker()
    producer = producer_for()
    (job_id,) = sent_jobs(producer, offering("yes-7", "no-7"))
    event = zixflow_event(tap("yes-7", "Yes"))
    assert [zixflow_posts(service, event) for _ in range(3)] == [
        "matched",
        "duplicate",
        "duplicate",
    ]
    wait_until(lambda: replied_events(receiver, job_id), what="the message.replied event")
    stats = real_redis.hgetall(producer.keys.stats)
    assert (stats["inbound:matched"], stats["inbound:duplicate"]) == ("1", "2")
    assert real_redis.zcard(producer.keys.inbound_index) == 1
    assert len(replied_events(receiver, job_id)) == 1


def test_events_of_unknown_shapes_are_kept_and_listed(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    unknown = {"event": "incoming.rcs.message", "payload": {"what": "not documented"}}
    text = zixflow_event({"type": "text", "text": {"body": "Thanks!"}}, eventId="text-1")
    assert [zixflow_posts(service, event) for event in (unknown, text)] == ["unknown", "other"]

    listed = cli(env, "replies", "list", "--outcome", "unknown", "--json")
    assert listed.returncode == 0, listed.stderr
    (kept,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (kept["outcome"], json.loads(kept["event"])) == ("unknown", unknown)
    everything = cli(env, "replies", "list").stdout.splitlines()
    assert [line.split("\t")[2] for line in everything] == ["other", "unknown"]


def test_a_reply_sends_a_message_replied_event_the_app_verifies(
    service: ServiceProcess, start_worker: Start, producer_for: Callable[..., Producer],
    receiver: Receiver,
) -> None:  # fmt: skip
    start_worker()
    (job_id,) = sent_jobs(producer_for(), offering("yes-8", "later-8"))
    event = zixflow_event(tap("later-8", "Later"), eventId="a1f6c1de-5b7e-4c35-9d43-5a0b3f6e2c11")
    assert zixflow_posts(service, event) == "matched"

    (replied,) = wait_until(lambda: replied_events(receiver, job_id), what="message.replied")
    assert replied["data"]["job_id"] == job_id and replied["data"]["state"] == "sent"
    assert replied["data"]["reply"]["title"] == "Later"
    ids = {r.headers["webhook-id"] for r in receiver.events(job_id)}
    assert ids == {f"{job_id}.message.sent", f"{job_id}.message.replied.{event['eventId']}"}


def test_the_sandbox_plays_the_recipients_and_their_replies_land(
    service: ServiceProcess, start_worker: Start, producer_for: Callable[..., Producer],
    sandbox: Sandbox, real_redis: redis.Redis,
) -> None:  # fmt: skip
    sandbox.configure_replies(
        ReplyPlan(url=service.url + PATH, token=HOOK_TOKEN, rate=1, delay=(0.1, 0.5))
    )
    start_worker()
    producer = producer_for()
    job_ids = producer.enqueue_many(
        [offering(f"yes-{n}", f"no-{n}", to=f"9198000007{n:02d}") for n in range(10)]
    )

    def replies() -> list[dict[str, Any]] | None:
        statuses = producer.get_statuses(job_ids)
        found = [status.reply for status in statuses if status and status.reply]
        return found if len(found) == len(job_ids) else None

    found = wait_until(replies, what="a reply on every job")
    assert all(reply["id"].split("-")[1] == str(n) for n, reply in enumerate(found))
    # The sandbox counts a reply once the service has answered it: after it was stored.
    wait_until(lambda: sandbox.stats()["replies"]["posted"] == 10, what="every reply counted")
    assert real_redis.hget(producer.keys.stats, "inbound:matched") == "10"


def test_failed_status_events_are_listed_and_replayed_by_the_cli(
    start_worker: Start, producer_for: Callable[..., Producer], receiver: Receiver,
    env: dict[str, str], real_redis: redis.Redis,
) -> None:  # fmt: skip
    receiver.script = [503, 503]  # down for the two tries it is given
    start_worker(env={"ZQ_EVENT_MAX_ATTEMPTS": "2"})
    producer = producer_for()
    job_id = producer.enqueue(wire_message())
    event_id = f"{job_id}.message.sent"
    wait_until(lambda: real_redis.zscore(producer.keys.events_dead, event_id), what="failed")

    listed = cli(env, "events", "list")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    cells = line.split("\t")
    assert (cells[0], cells[2:]) == (
        event_id, ["message.sent", job_id, receiver.url, "2", "HTTP 503 from the callback URL"]
    )  # fmt: skip

    replayed = cli(env, "events", "replay", event_id)
    assert (replayed.returncode, replayed.stdout) == (0, f"{event_id}\n")
    wait_until(lambda: len(receiver.events(job_id)) == 3, what="the event again")
    first, _, again = receiver.events(job_id)
    assert again.headers["webhook-id"] == event_id and again.body == first.body
    assert again.verified()["type"] == "message.sent"
    wait_until(lambda: real_redis.hget(producer.keys.stats, "events:delivered") == "1")
    assert cli(env, "events", "list").stdout == ""
