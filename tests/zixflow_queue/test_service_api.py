"""The HTTP service in-process (FastAPI's TestClient) on the tests' real Redis: every answer.

The service as a process of its own, with workers and the sandbox, is in test_service.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx2
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from pydantic import SecretStr

from producer import Job, OutcomeUnknown, Producer, ValidationError
from producer.aio import AsyncProducer, AsyncStore
from producer.errors import ConfigurationError
from producer.settings import ProducerSettings
from producer.store import Store
from tests.support import wire_message
from zixflow_queue.cli.main import parse_arguments
from zixflow_queue.demo.processes import free_port
from zixflow_queue.service import messages as messages_module
from zixflow_queue.service.app import create_app
from zixflow_queue.service.body import read_json
from zixflow_queue.service.enqueuer import Enqueuer
from zixflow_queue.service.settings import ServiceSettings, service_settings

TOKENS = ("token-a-4f2c9e", "token-b-91d07a")
AUTH = {"Authorization": f"Bearer {TOKENS[0]}"}
MAX_ITEMS = 5
MAX_BYTES = 64 * 1024
LONG_TITLE = "A title of 27 characters!!!"
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


@pytest.fixture
def service_settings_for(redis_url: str) -> ServiceSettings:
    """The service's settings on the tests' Redis, with small limits to reach."""
    return ServiceSettings(
        redis_url=redis_url,
        queue="zq-service-test",
        api_tokens=tuple(SecretStr(token) for token in TOKENS),
        max_batch_items=MAX_ITEMS,
        max_body_bytes=MAX_BYTES,
    )


@pytest.fixture
def client(service_settings_for: ServiceSettings) -> Iterator[TestClient]:
    """The app, started (its lifespan opens Redis) and stopped around the test."""
    with TestClient(create_app(service_settings_for)) as test_client:
        yield test_client


@pytest.fixture
def queue(service_settings_for: ServiceSettings) -> Producer:
    """A producer on the service's deployment, to see what it stored."""
    return Producer(service_settings_for, Store.connect(service_settings_for))


def post(
    client: TestClient, body: Any, *, path: str = "/v1/messages", **headers: str
) -> httpx2.Response:
    """POST a JSON body with a valid token and any extra headers (`Idempotency_Key=...`)."""
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return client.post(path, json=body, headers={**AUTH, **named})


def post_raw(client: TestClient, content: Any, content_type: str | None) -> httpx2.Response:
    """POST bytes (or an iterator of them) with a valid token and this Content-Type."""
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    return client.post("/v1/messages", content=content, headers=headers)


def problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 body of an error answer, checked for its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["type"].startswith("urn:zixflow-queue:problem:")
    return body


def errors(response: httpx2.Response) -> dict[str, str]:
    """A 422's invalid fields, path → message."""
    body = problem(response, 422)
    return {error["path"]: error["message"] for error in body["errors"]}


def job_records(queue: Producer) -> list[str]:
    """The job records of the service's deployment."""
    return list(queue.store.records.scan_iter(queue.keys.job("*")))


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


# --- queueing, status, cancel ---


def test_a_message_is_queued_with_its_location(client: TestClient, queue: Producer) -> None:
    answer = post(client, {"message": wire_message(to="+91 98765-43210")})
    assert answer.status_code == 202
    body = answer.json()
    assert body["state"] == "queued"
    assert answer.headers["location"] == f"/v1/messages/{body['id']}"
    status = queue.get_status(body["id"])
    assert status is not None and status.state == "queued" and status.to == "919876543210"


def test_the_status_is_job_status_as_dict(client: TestClient, queue: Producer) -> None:
    job_id = post(client, {"message": wire_message()}).json()["id"]
    answer = client.get(f"/v1/messages/{job_id}", headers=AUTH)
    assert answer.status_code == 200
    status = queue.get_status(job_id)
    assert status is not None
    assert answer.json() == json.loads(json.dumps(status.as_dict()))


def test_a_batch_is_queued_in_order(client: TestClient, queue: Producer) -> None:
    recipients = [f"9198000000{n:02d}" for n in range(MAX_ITEMS)]
    items = [{"message": wire_message(to=to)} for to in recipients]
    answer = post(client, {"items": items}, path="/v1/messages/batch")
    assert answer.status_code == 202
    statuses = queue.get_statuses(answer.json()["ids"])
    assert [status.to for status in statuses if status is not None] == recipients


def test_at_most_two_batches_are_in_hand_at_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six batches posted together: two are validated and stored at a time, the rest wait."""
    posts = 6
    enqueuer = client.app.state.enqueuer  # type: ignore[attr-defined]
    store = enqueuer.enqueue
    arrived = [0]
    in_hand = [0]
    most = [0]

    async def counted(request: Any, max_bytes: int) -> bytes:
        arrived[0] += 1
        return await read_json(request, max_bytes)

    async def held(jobs: Sequence[Job], key: str | None) -> list[str]:
        in_hand[0] += 1
        most[0] = max(most[0], in_hand[0])
        try:  # held until every post has arrived, so that any not kept waiting joins in
            deadline = time.monotonic() + 10
            while arrived[0] < posts and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            return cast(list[str], await store(jobs, key))
        finally:
            in_hand[0] -= 1

    monkeypatch.setattr(messages_module, "read_json", counted)
    monkeypatch.setattr(enqueuer, "enqueue", held)
    body = {"items": [{"message": wire_message()}]}
    with ThreadPoolExecutor(posts) as pool:
        answers = list(
            pool.map(lambda _: post(client, body, path="/v1/messages/batch"), range(posts))
        )
    assert [answer.status_code for answer in answers] == [202] * posts
    assert arrived[0] == posts
    assert most[0] == messages_module.BATCHES_IN_HAND == 2


@pytest.mark.parametrize(
    ("send_at", "state"),
    [(in_an_hour(), "scheduled"), ("2020-01-01T09:30:00+05:30", "queued")],
    ids=["to-come", "past"],
)
def test_a_send_time_to_come_schedules_and_one_past_sends_now(
    client: TestClient, send_at: str, state: str
) -> None:
    answer = post(client, {"message": wire_message(), "sendAt": send_at})
    assert answer.status_code == 202
    assert answer.json()["state"] == state
    status = client.get(answer.headers["location"], headers=AUTH).json()
    assert status["state"] == state


def test_delete_cancels_once_then_409(client: TestClient) -> None:
    location = post(client, {"message": wire_message(), "sendAt": in_an_hour()}).headers["location"]
    canceled = client.delete(location, headers=AUTH)
    assert canceled.status_code == 200
    assert canceled.json()["state"] == "canceled"
    again = problem(client.delete(location, headers=AUTH), 409)
    assert again["type"].endswith(":not-cancelable")
    assert "is canceled" in again["detail"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("job_id", ["0" * 32, "not-a-job-id", "x" * 300])
def test_unknown_ids_are_404(client: TestClient, method: str, job_id: str) -> None:
    body = problem(client.request(method, f"/v1/messages/{job_id}", headers=AUTH), 404)
    assert len(body["detail"]) < 100  # the id is shown cut short


# --- authentication ---

AUTHENTICATED = [
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/batch"),
    ("GET", "/v1/messages/" + "0" * 32),
    ("DELETE", "/v1/messages/" + "0" * 32),
    ("GET", "/openapi.json"),
]
REFUSED = {
    "no header": {},
    "another scheme": {"Authorization": f"Basic {TOKENS[0]}"},
    "no scheme": {"Authorization": TOKENS[0]},
    "no token": {"Authorization": "Bearer "},
    "a wrong token": {"Authorization": "Bearer not-a-token"},
    "a token in another case": {"Authorization": f"Bearer {TOKENS[0].upper()}"},
}


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED, ids=" ".join)
def test_every_endpoint_but_the_health_checks_needs_a_token(
    client: TestClient, method: str, path: str
) -> None:
    answers = []
    for headers in REFUSED.values():
        answer = client.request(method, path, headers=headers, content=b"{not json")
        body = problem(answer, 401)
        assert answer.headers["www-authenticate"] == "Bearer"
        answers.append(body)
    assert all(body == answers[0] for body in answers)  # nothing tells what was wrong


def test_every_configured_token_is_accepted(client: TestClient) -> None:
    for token in TOKENS:
        answer = client.get("/openapi.json", headers={"Authorization": f"bearer {token}"})
        assert answer.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_health_checks_need_no_token(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


# --- bad requests ---


def test_malformed_json_is_400(client: TestClient) -> None:
    answer = post_raw(client, b'{"message": ', "application/json")
    body = problem(answer, 400)
    assert body["type"].endswith(":malformed-json")
    assert "not valid JSON" in body["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(client: TestClient, content_type: str | None) -> None:
    answer = post_raw(client, json.dumps({"message": wire_message()}), content_type)
    body = problem(answer, 415)
    assert answer.headers["accept-post"] == "application/json"
    assert "application/json" in body["detail"]


def test_json_with_a_charset_or_a_json_suffix_is_taken(client: TestClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        answer = post_raw(client, json.dumps({"message": wire_message()}), content_type)
        assert answer.status_code == 202, content_type


def test_a_body_over_the_limit_is_413_by_its_length(client: TestClient, queue: Producer) -> None:
    body = {"message": wire_message(), "padding": "x" * MAX_BYTES}
    refused = problem(post(client, body), 413)
    assert refused["type"].endswith(":body-too-large")
    assert "ZQ_MAX_BODY_BYTES" in refused["detail"]
    assert not job_records(queue)


def test_a_body_over_the_limit_is_413_while_it_is_read(client: TestClient) -> None:
    """Chunked, with no Content-Length: the limit holds as the body arrives."""

    def chunks() -> Iterator[bytes]:
        for _ in range(1000):
            yield b" " * 1024

    answer = post_raw(client, chunks(), "application/json")
    assert "content-length" not in answer.request.headers
    assert f"{MAX_BYTES:,} bytes" in problem(answer, 413)["detail"]


def test_a_batch_of_too_many_items_is_413_naming_the_limit(
    client: TestClient, queue: Producer
) -> None:
    items = [{"message": wire_message()}] * (MAX_ITEMS + 1)
    body = problem(post(client, {"items": items}, path="/v1/messages/batch"), 413)
    assert body["type"].endswith(":too-many-items")
    assert f"at most {MAX_ITEMS} items (ZQ_MAX_BATCH_ITEMS), got {MAX_ITEMS + 1}" in body["detail"]
    assert not job_records(queue)


def titled(title: str) -> dict[str, object]:
    """A message whose first button has this title."""
    message = wire_message()
    message["interactive"]["action"]["buttons"][0]["reply"]["title"] = title  # type: ignore[index]
    return message


def test_invalid_fields_are_422_by_their_wire_paths_in_the_producers_words(
    client: TestClient,
) -> None:
    answer = post(
        client,
        {
            "message": titled(LONG_TITLE),
            "sendAt": "tomorrow",
            "callbackUrl": "ftp://example.com/hook",
            "send_at": 5,
        },
    )
    title = "message.interactive.action.buttons.0.reply.title"
    assert errors(answer) == {
        title: "must be at most 20 characters (grapheme clusters), got 27",
        "sendAt": "must be an ISO 8601 date and time such as 2026-05-01T09:30:00+05:30, "
        "got 'tomorrow'",
        "callbackUrl": "must be an http(s) URL, got 'ftp://example.com/hook'",
        "send_at": "unknown field; did you mean 'sendAt'?",
    }
    assert "Input should" not in answer.text  # pydantic's own words never show


def test_a_flood_of_problems_is_counted_not_listed(client: TestClient) -> None:
    """12,000 empty buttons in a 36 kB body: a short answer, not a list of 12,000."""
    buttons: list[object] = [{}] * 12_000
    answer = post(client, {"message": {"interactive": {"action": {"buttons": buttons}}}})
    body = problem(answer, 422)
    assert body["detail"].startswith("the body has 12,003 problems, too many to list")
    assert len(body["errors"]) == 1
    assert len(answer.content) < 1000


def test_a_batch_item_is_named_by_its_index(client: TestClient, queue: Producer) -> None:
    items = [{"message": wire_message()} for _ in range(4)]
    items[3] = {"message": titled(LONG_TITLE)}
    answer = post(client, {"items": items}, path="/v1/messages/batch")
    assert set(errors(answer)) == {"items.3.message.interactive.action.buttons.0.reply.title"}
    assert not job_records(queue)  # all or nothing


def test_a_send_time_past_the_record_lifetime_is_refused_by_item(
    client: TestClient, queue: Producer
) -> None:
    too_far = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    items = [{"message": wire_message()}, {"message": wire_message(), "sendAt": too_far}]
    found = errors(post(client, {"items": items}, path="/v1/messages/batch"))
    assert list(found) == ["items.1.sendAt"]
    assert "ZQ_RECORD_TTL" in found["items.1.sendAt"]
    single = errors(post(client, {"message": wire_message(), "sendAt": too_far}))
    assert list(single) == ["sendAt"]
    assert not job_records(queue)


def test_a_send_time_without_a_timezone_is_refused(client: TestClient) -> None:
    found = errors(post(client, {"message": wire_message(), "sendAt": "2026-05-01T09:30:00"}))
    assert found == {
        "sendAt": "must include a timezone (Z or an offset like +05:30), got '2026-05-01T09:30:00'"
    }


def test_a_bad_idempotency_key_is_named_by_its_header(client: TestClient) -> None:
    found = errors(post(client, {"message": wire_message()}, Idempotency_Key="k" * 300))
    assert found == {"Idempotency-Key": "must be at most 255 characters, got 300"}


def test_unknown_endpoints_and_methods_are_problems(client: TestClient) -> None:
    problem(client.get("/v2/messages", headers=AUTH), 404)
    assert problem(client.put("/v1/messages", headers=AUTH), 405)["detail"]


# --- idempotency ---


def test_the_same_key_and_body_answer_as_the_first_time(
    client: TestClient, queue: Producer
) -> None:
    body = {"message": wire_message(), "sendAt": in_an_hour()}
    first = post(client, body, Idempotency_Key="order-7")
    again = post(client, body, Idempotency_Key="order-7")
    quoted = post(client, body, Idempotency_Key='"order-7"')  # the draft's structured field
    assert first.status_code == again.status_code == quoted.status_code == 202
    assert first.json() == again.json() == quoted.json()
    assert first.headers["location"] == again.headers["location"]
    assert len(job_records(queue)) == 1


def test_the_same_key_with_another_body_is_422(client: TestClient, queue: Producer) -> None:
    post(client, {"message": wire_message()}, Idempotency_Key="order-8")
    answer = post(client, {"message": wire_message(to="919800000009")}, Idempotency_Key="order-8")
    body = problem(answer, 422)
    assert body["type"].endswith(":idempotency-conflict")
    assert "order-8" in body["detail"]
    assert len(job_records(queue)) == 1


# --- Redis failing ---


def test_redis_unreachable_is_503_with_retry_after(service_settings_for: ServiceSettings) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings = service_settings_for.model_copy(update={"redis_url": nowhere})
    with TestClient(create_app(settings)) as client:
        for answer in (
            post(client, {"message": wire_message()}),
            client.get("/v1/messages/" + "0" * 32, headers=AUTH),
            client.get("/readyz"),
        ):
            body = problem(answer, 503)
            assert int(answer.headers["retry-after"]) > 0
            assert "127.0.0.1" not in body["detail"]  # Redis's address stays in the log
        assert client.get("/healthz").status_code == 200


def test_an_unknown_outcome_says_to_retry_with_the_same_key(
    service_settings_for: ServiceSettings,
) -> None:
    """With an extra router, as /metrics will be added: the app's error handling covers it."""
    from zixflow_queue.service.app import ROUTERS  # noqa: PLC0415 - next to its use

    extra = APIRouter()

    @extra.get("/lost")
    async def lost() -> None:
        raise OutcomeUnknown("the answer was lost")

    app = create_app(service_settings_for, routers=[*ROUTERS, lambda _: extra])
    with TestClient(app) as client:
        answer = client.get("/lost")
    body = problem(answer, 503)
    assert body["type"].endswith(":outcome-unknown")
    assert "retry with the same Idempotency-Key" in body["detail"]
    assert answer.headers["retry-after"]


# --- the OpenAPI document ---


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json", headers=AUTH)
    assert answer.status_code == 200
    spec: dict[str, Any] = answer.json()
    return spec


def test_the_openapi_document_is_valid_and_names_every_path(document: dict[str, Any]) -> None:
    validate(document)
    assert set(document["paths"]) == {
        "/v1/messages",
        "/v1/messages/batch",
        "/v1/messages/{id}",
        "/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/zixflow/events",
    }


def test_the_openapi_document_has_the_bearer_scheme_where_tokens_are_needed(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            secured = operation.get("security") == [{"bearer": []}]
            # Zixflow's webhook has a token of its own (test_zixflow_events.py)
            bearer = path not in ("/healthz", "/readyz", "/v1/zixflow/events")
            assert secured == bearer, f"{method} {path}"


def test_the_openapi_document_shows_the_wire_message_with_its_limits(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    body = document["paths"]["/v1/messages"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/SubmitRequest"}
    assert schemas["SubmitRequest"]["properties"]["message"] == {
        "$ref": "#/components/schemas/ReplyButtonMessage"
    }
    assert {"to", "phoneId", "interactive"} <= set(schemas["ReplyButtonMessage"]["required"])
    assert schemas["Reply"]["properties"]["id"]["maxLength"] == 256
    assert "1 to 20 characters" in schemas["Reply"]["properties"]["title"]["description"]
    assert schemas["BatchRequest"]["properties"]["items"]["maxItems"] == MAX_ITEMS
    errors_422 = document["paths"]["/v1/messages"]["post"]["responses"]["422"]["content"]
    assert errors_422["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ProblemDetails"
    }


# --- settings and the command line ---


def test_tokens_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZQ_API_TOKENS", " first , second,,third ")
    tokens = service_settings().api_tokens
    assert [token.get_secret_value() for token in tokens] == ["first", "second", "third"]


@pytest.mark.parametrize("value", [None, "", " , "])
def test_no_token_is_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("ZQ_API_TOKENS", raising=False)
    else:
        monkeypatch.setenv("ZQ_API_TOKENS", value)
    with pytest.raises(ConfigurationError, match=r"^ZQ_API_TOKENS: set at least one"):
        service_settings()


def test_a_bad_limit_is_named_and_tokens_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZQ_API_TOKENS", TOKENS[0])
    monkeypatch.setenv("ZQ_MAX_BATCH_ITEMS", "5000")
    with pytest.raises(ConfigurationError, match="ZQ_MAX_BATCH_ITEMS='5000'") as raised:
        service_settings()
    assert TOKENS[0] not in str(raised.value)
    assert TOKENS[0] not in repr(ServiceSettings(api_tokens=TOKENS, max_batch_items=1))


def test_serve_listens_on_127_0_0_1_8080_by_default() -> None:
    args = parse_arguments(["serve"])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 8080, 1)
    assert parse_arguments(["serve", "--host", "0.0.0.0", "--port", "9000"]).port == 9000


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_serve_refuses_a_port_out_of_range(port: str) -> None:
    with pytest.raises(SystemExit):
        parse_arguments(["serve", "--port", port])


# --- requests sharing round trips ---


def test_requests_of_one_turn_share_a_producer_call_but_not_their_outcomes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty requests at once: those without a key are stored by one call, except the one
    with a send time too far ahead, refused alone; the one with a key is stored on its own."""
    settings = ProducerSettings(redis_url=redis_url, queue="zq-enqueuer-test")
    recipients = [f"9198000001{n:02d}" for n in range(20)]
    jobs = [Job(wire_message(to=to)) for to in recipients]
    jobs[3] = Job(jobs[3].message, send_at=time.time() + 30 * 86400)
    keys = ["order-9" if n == 7 else None for n in range(20)]
    calls: list[tuple[int, str | None]] = []

    async def enqueue_all() -> list[list[str] | BaseException]:
        store = AsyncStore.connect(settings)
        producer = AsyncProducer(settings, store)
        enqueue_jobs = producer.enqueue_jobs

        async def counted(batch: Sequence[Job], *, idempotency_key: str | None = None) -> Any:
            calls.append((len(batch), idempotency_key))
            return await enqueue_jobs(batch, idempotency_key=idempotency_key)

        monkeypatch.setattr(producer, "enqueue_jobs", counted)
        enqueuer = Enqueuer(producer)
        try:
            return await asyncio.gather(
                *(enqueuer.enqueue([job], key) for job, key in zip(jobs, keys, strict=True)),
                return_exceptions=True,
            )
        finally:
            await store.close()

    outcomes = asyncio.run(enqueue_all())
    # The keyed one alone; the nineteen others together, then again without the invalid one.
    assert sorted(calls, key=str) == sorted([(1, "order-9"), (19, None), (18, None)], key=str)
    refused = outcomes.pop(3)
    assert isinstance(refused, ValidationError)
    assert [problem.path for problem in refused.problems] == ["send_at"]
    job_ids = [ids[0] for ids in outcomes if isinstance(ids, list)]
    assert len(set(job_ids)) == 19
    statuses = Producer(settings, Store.connect(settings)).get_statuses(job_ids)
    assert [status.to if status else None for status in statuses] == [
        to for n, to in enumerate(recipients) if n != 3
    ]
