"""POST /v1/zixflow/events in-process (FastAPI's TestClient) on the tests' real Redis: every answer.

With the service, workers and the sandbox as processes: tests/integration/test_replies.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from producer import Producer
from producer.store import Store
from tests.zixflow_queue.test_replies import offering, sent, tap, zixflow_event
from zixflow_queue.replies.kept import KeptEvents
from zixflow_queue.service.app import create_app
from zixflow_queue.service.settings import ServiceSettings

API_TOKEN = "api-token-3e8d21"
HOOK_TOKEN = "hook-token-9a4f70"
HOOK = {"X-Zixflow-Token": HOOK_TOKEN}
PATH = "/v1/zixflow/events"


def settings_for(redis_url: str, token: str | None = HOOK_TOKEN) -> ServiceSettings:
    """The service on the tests' Redis, taking Zixflow's events with `token` (None: unset).

    On the queue `sent` (test_replies) records its jobs in.
    """
    return ServiceSettings(
        redis_url=redis_url, queue="zq-replies", api_tokens=(SecretStr(API_TOKEN),),
        zixflow_webhook_token=SecretStr(token) if token is not None else None,
        max_body_bytes=4096, callback_url="http://127.0.0.1:9/hooks",
    )  # fmt: skip


@pytest.fixture
def settings(redis_url: str) -> ServiceSettings:
    return settings_for(redis_url)


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def queue(settings: ServiceSettings) -> Producer:
    """A producer on the service's deployment."""
    return Producer(settings, Store.connect(settings))


def post(client: TestClient, event: Any, **headers: str) -> httpx2.Response:
    """POST an event (a JSON value, or bytes as they are) with the webhook token."""
    content = event if isinstance(event, bytes) else json.dumps(event).encode()
    return client.post(PATH, content=content, headers={**HOOK, **headers})


def kept(queue: Producer) -> int:
    """How many events the deployment has kept."""
    return int(queue.store.records.zcard(queue.keys.inbound_index))


# --- who may post ---


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Zixflow-Token": "guessed"}, {"X-Zixflow-Token": HOOK_TOKEN.upper()},
     {"X-Zixflow-Token": ""}, {"Authorization": f"Bearer {API_TOKEN}"}],
    ids=["none", "wrong", "another case", "empty", "an API token"],
)  # fmt: skip
def test_without_the_webhook_token_an_event_is_refused_and_not_kept(
    client: TestClient, queue: Producer, headers: dict[str, str]
) -> None:
    answer = client.post(PATH, json=zixflow_event(tap("yes", "Yes")), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert "X-Zixflow-Token" in answer.json()["detail"]
    assert kept(queue) == 0


def test_with_no_webhook_token_set_every_event_is_refused_and_a_warning_logged(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings_for(redis_url, None))
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        for token in ("", "anything"):
            answer = client.post(PATH, json={}, headers={"X-Zixflow-Token": token})
            assert answer.status_code == 401
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "ZQ_ZIXFLOW_WEBHOOK_TOKEN is not set: POST /v1/zixflow/events refuses every event (401)"
    ]


# --- what it keeps ---


def test_a_button_reply_is_answered_matched_and_lands_on_its_job(
    client: TestClient, queue: Producer, real_redis: redis.Redis
) -> None:
    first = sent(queue, asyncio.run, offering("yes-1", "no-1"))
    second = sent(queue, asyncio.run, offering("yes-2", "no-2"))
    answer = post(client, zixflow_event(tap("no-2", "No")))
    assert (answer.status_code, answer.json()) == (200, {"outcome": "matched"})
    replied = client.get(f"/v1/messages/{second}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert replied.json()["reply"] == {"id": "no-2", "title": "No",
                                       "at": "2025-12-01T14:00:00.123000+00:00"}  # fmt: skip
    other = queue.get_status(first)
    assert other is not None and other.reply is None
    assert real_redis.llen(queue.keys.events_ready) == 1  # its message.replied event


def test_a_repeated_event_id_counts_once(
    client: TestClient, queue: Producer, real_redis: redis.Redis
) -> None:
    job_id = sent(queue, asyncio.run, offering("yes"))
    outcomes = [post(client, zixflow_event(tap("yes", "Yes"))).json()["outcome"] for _ in range(3)]
    assert outcomes == ["matched", "duplicate", "duplicate"]
    assert kept(queue) == 1
    assert real_redis.hget(queue.keys.stats, "inbound:matched") == "1"
    assert real_redis.lrange(queue.keys.events_ready, 0, -1) == [
        f"{job_id}.message.replied.0b6f6a44-3c7e-4c1e-9d0b-1f2e3d4c5b6a"
    ]


@pytest.mark.parametrize(
    ("event", "outcome"),
    [(zixflow_event(tap("nobody-offered", "Yes"), eventId="e-1"), "unmatched"),
     (zixflow_event({"type": "text", "text": {"body": "hi"}}, eventId="e-2"), "other"),
     ({"event": "incoming.rcs.message", "data": [1, 2]}, "unknown"), ([1, 2, 3], "unknown"),
     ("just a string", "unknown")],
    ids=["unmatched", "other", "unknown envelope", "a list", "a string"],
)  # fmt: skip
def test_events_that_match_nothing_are_kept_not_refused(
    client: TestClient, queue: Producer, event: Any, outcome: str
) -> None:
    answer = post(client, event)
    assert (answer.status_code, answer.json()) == (200, {"outcome": outcome})
    assert kept(queue) == 1
    (kept_event,) = KeptEvents(queue.store.records, queue.keys).latest()
    assert (kept_event.outcome, json.loads(kept_event.event)) == (outcome, event)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_any_content_type_is_taken_when_the_body_is_json(
    client: TestClient, queue: Producer, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = post(client, zixflow_event(tap("yes", "Yes")), **headers)
    assert (answer.status_code, answer.json()) == (200, {"outcome": "unmatched"})
    assert kept(queue) == 1


# --- what it refuses ---


@pytest.mark.parametrize("body", [b'{"eventId": ', b"\xff\xfe not text", b"[" * 4000 + b"]"])
def test_a_body_that_is_not_json_is_400(client: TestClient, queue: Producer, body: bytes) -> None:
    answer = post(client, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == "urn:zixflow-queue:problem:malformed-json"
    assert kept(queue) == 0


def test_a_body_over_the_limit_is_413(client: TestClient, queue: Producer) -> None:
    answer = post(client, zixflow_event({"type": "text", "text": {"body": "x" * 5000}}))
    assert answer.status_code == 413
    assert "ZQ_MAX_BODY_BYTES" in answer.json()["detail"]
    assert kept(queue) == 0


def test_while_redis_is_away_the_answer_is_503_with_retry_after() -> None:
    with TestClient(create_app(settings_for("redis://127.0.0.1:1/0"))) as client:
        answer = post(client, zixflow_event(tap("yes", "Yes")))
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) > 0
    assert "Zixflow sends it again" in answer.json()["detail"]


# --- the OpenAPI document ---


def test_the_openapi_document_shows_the_endpoint_with_its_own_scheme(client: TestClient) -> None:
    document = client.get("/openapi.json", headers={"Authorization": f"Bearer {API_TOKEN}"}).json()
    scheme = document["components"]["securitySchemes"]["zixflowToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Zixflow-Token")
    operation = document["paths"][PATH]["post"]
    assert operation["security"] == [{"zixflowToken": []}]
    assert set(operation["responses"]) == {"200", "400", "401", "413", "503"}
    event = document["components"]["schemas"]["ZixflowEvent"]
    assert {"eventId", "phoneId", "sender"} <= set(event["required"])
