"""The dashboard in-process (FastAPI's TestClient) on the tests' real Redis.

In a real browser, against a served process with workers: test_dashboard_browser.py.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Iterator

import httpx2
import pytest
import redis.asyncio
from fastapi.testclient import TestClient
from pydantic import SecretStr

from producer import Producer
from producer.deadletters import DeadLetter, DeadLetters
from producer.store import Store, connection_options
from tests.support import wire_message, wire_messages
from worker.jobs import Ending, Finish, JobRecords, Wakeups
from worker.settings import WorkerSettings
from zixflow_queue.service.app import create_app
from zixflow_queue.service.dashboard_view import seconds, slot_rates
from zixflow_queue.service.settings import ServiceSettings
from zixflow_queue.stats import Histogram, Snapshot

TOKENS = ("dash-token-5e1b7c", "dash-token-c0ffee")
QUEUE = "zq-dashboard-test"
CLOSED = "HTTP 400: (#131047) Re-engagement message"


def basic(user: str, password: str) -> dict[str, str]:
    """The Authorization header a browser sends for this user name and password."""
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


SIGNED_IN = basic("operator", TOKENS[0])


@pytest.fixture
def settings(redis_url: str) -> ServiceSettings:
    return ServiceSettings(
        redis_url=redis_url,
        queue=QUEUE,
        api_tokens=tuple(SecretStr(token) for token in TOKENS),
    )


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def producer(settings: ServiceSettings) -> Producer:
    return Producer(settings, Store.connect(settings))


@pytest.fixture
def letters(producer: Producer) -> DeadLetters:
    return DeadLetters(producer.store, producer.settings)


def finish(redis_url: str, sent: list[str], failed: dict[str, str]) -> None:
    """Take, claim and finish these waiting jobs as a worker does: sent, or failed for a reason."""
    settings = WorkerSettings(redis_url=redis_url, queue=QUEUE)

    async def work() -> None:
        client = redis.asyncio.Redis.from_url(redis_url, **connection_options(5))
        jobs = JobRecords(client, settings, "w1", Wakeups(settings, None))
        await jobs.take(len(sent) + len(failed))
        await jobs.claim([*sent, *failed])
        await jobs.finish([
            *(Finish(job_id, 1, Ending.SENT, "sent", seconds=0.05) for job_id in sent),
            *(Finish(job_id, 1, Ending.FAILED, "permanent", error=reason, seconds=0.2,
                     dead_letter=DeadLetter(job_id, reason, job_id=job_id, attempts=1,
                                            status_code=400).as_dict())
              for job_id, reason in failed.items()),
        ])  # fmt: skip
        await client.aclose()

    asyncio.run(work())


def form_token(page: httpx2.Response) -> str:
    """The form token a dashboard page carries."""
    found = re.search(r'name="form_token" value="([0-9a-f]+)"', page.text)
    assert found, "the page has no form"
    return found[1]


# --- signing in ---


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("operator", "guessed-token"),
        basic("operator", TOKENS[0] + "x"),
        {"Authorization": f"Bearer {TOKENS[0]}"},  # the API's scheme, not the dashboard's
        {"Authorization": "Basic !!not-base64!!"},
        {"Authorization": "Basic " + base64.b64encode(TOKENS[0].encode()).decode()},  # no colon
    ],
    ids=["none", "wrong", "longer", "bearer", "malformed", "no-user-part"],
)
def test_the_dashboard_wants_an_api_token_as_the_basic_auth_password(
    client: TestClient, headers: dict[str, str]
) -> None:
    for path in ("/dashboard", "/dashboard/stats.json", "/dashboard/dead"):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Basic realm="zixflow-queue"'
        assert answer.headers["content-type"] == "application/problem+json"
    assert client.post("/dashboard/dead/purge", headers=headers).status_code == 401


@pytest.mark.parametrize("user", ["", "alice", "night shift", "ops@example.com"])
def test_any_user_name_signs_in_with_any_of_the_tokens(client: TestClient, user: str) -> None:
    for token in TOKENS:
        answer = client.get("/dashboard", headers=basic(user, token))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert QUEUE in answer.text


def test_every_page_is_served_with_its_defences(client: TestClient) -> None:
    for page in ("", "/backlog", "/limits", "/dead", "/search?q=nothing"):
        answer = client.get(f"/dashboard{page}", headers=SIGNED_IN)
        assert answer.status_code == 200, page
        assert '<meta name="viewport"' in answer.text
        assert "script-src" not in answer.headers["content-security-policy"]  # default: self
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"


def test_the_assets_are_served_by_the_service_itself(client: TestClient) -> None:
    page = client.get("/dashboard", headers=SIGNED_IN).text
    assets = re.findall(r'(?:href|src)="(/dashboard/static/[^"]+)"', page)
    assert {"/dashboard/static/dashboard.css", "/dashboard/static/dashboard.js"} <= set(assets)
    for asset in assets:
        assert client.get(asset).status_code == 200
    assert not re.search(r'(?:href|src)="(?:https?:)?//', page)  # nothing from elsewhere


# --- the numbers ---


def test_the_live_numbers_count_what_workers_did(
    client: TestClient, producer: Producer, redis_url: str
) -> None:
    sent, failed, _ = producer.enqueue_many(wire_messages(3))
    producer.enqueue(wire_message(), send_at=time.time() + 600)
    finish(redis_url, [sent], {failed: CLOSED})

    live = client.get("/dashboard/stats.json", headers=SIGNED_IN)
    assert live.headers["content-type"] == "application/json"
    counts = live.json()["counts"]
    assert (counts["sent"], counts["failed"], counts["dead_letters"]) == ("1", "1", "1")
    assert (counts["waiting"], counts["scheduled"], counts["attempt:permanent"]) == ("1", "1", "1")
    rates = live.json()["rates"]
    assert len(rates) == 30
    assert sum(slot[1] for slot in rates) > 0 and sum(slot[2] for slot in rates) > 0

    overview = client.get("/dashboard", headers=SIGNED_IN).text
    assert re.search(r'data-count="dead_letters">1<', overview)
    assert "Attempts by outcome" in overview


def test_rates_are_per_second_and_the_current_slot_counts_its_seconds_so_far() -> None:
    empty = Histogram({})
    snapshot = Snapshot(
        at=1_000_025.0, counters={}, waiting=0, queue_items=0, scheduled=0, in_flight=0,
        workers=0, dead_letters=0, events_pending=0, events_failed=0, deferrals={},
        send_seconds=empty, latency_seconds=empty, oldest_waiting_seconds=None,
        series=[(1_000_010.0, 50, 5), (1_000_020.0, 20, 0)],
    )  # fmt: skip
    assert slot_rates(snapshot) == [[1_000_010.0, 5.0, 0.5], [1_000_020.0, 4.0, 0.0]]
    assert [seconds(value) for value in (None, 0.0421, 12.34, 600)] == [
        "\N{EN DASH}", "42 ms", "12.3 s", "10 min",
    ]  # fmt: skip


def test_the_backlog_and_the_rate_limits(
    client: TestClient, producer: Producer, settings: ServiceSettings
) -> None:
    first, second = producer.enqueue_many(wire_messages(2))
    later = producer.enqueue(wire_message(), send_at=time.time() + 600)
    backlog = client.get("/dashboard/backlog", headers=SIGNED_IN).text
    assert backlog.index(first) < backlog.index(second)  # the oldest first
    assert later in backlog

    records, keys = producer.store.records, settings.keys
    records.hset(keys.deferrals, mapping={"106540352242922": 7, "106540352242923": 2})
    records.set(keys.phone_deferred("106540352242922"), repr(time.time() + 30))
    limits = client.get("/dashboard/limits", headers=SIGNED_IN).text
    busy, calm = limits.split("106540352242923")
    assert "106540352242922" in busy and "holding sends" in busy
    assert "within its limit" in calm


# --- search ---


def test_search_finds_a_job_by_id_with_its_record_and_history(
    client: TestClient, producer: Producer, redis_url: str
) -> None:
    job_id = producer.enqueue(wire_message())
    finish(redis_url, [], {job_id: CLOSED})
    page = client.get("/dashboard/search", params={"q": job_id}, headers=SIGNED_IN).text
    assert 'class="state state-failed">failed<' in page
    assert "Re-engagement message" in page  # the status's error, and the history's detail
    assert "<dt>phone_id</dt>" in page  # the record as stored
    assert "Confirm your order #42?" in page  # its message


def test_search_finds_a_recipients_jobs_as_they_write_the_number(
    client: TestClient, producer: Producer
) -> None:
    older = producer.enqueue(wire_message(to="919876543210"))
    newer = producer.enqueue(wire_message(to="+91 98765-43210"))
    other = producer.enqueue(wire_message(to="919800000001"))
    page = client.get("/dashboard/search", params={"q": "+91 98765 43210"}, headers=SIGNED_IN)
    assert "Jobs to 919876543210" in page.text
    assert page.text.index(newer) < page.text.index(older)  # the newest first
    assert other not in page.text


def test_search_finds_the_jobs_of_an_idempotency_key(
    client: TestClient, producer: Producer
) -> None:
    job_ids = producer.enqueue_many(wire_messages(3), idempotency_key="order-1042")
    page = client.get("/dashboard/search", params={"q": "order-1042"}, headers=SIGNED_IN).text
    assert "Jobs of the idempotency key" in page
    assert all(job_id in page for job_id in job_ids)
    missing = client.get("/dashboard/search", params={"q": "order-1043"}, headers=SIGNED_IN)
    assert "No job has the id, recipient or idempotency key" in missing.text


# --- dead letters ---


def test_a_crafted_dead_letter_is_shown_as_text(client: TestClient, letters: DeadLetters) -> None:
    letters.add(DeadLetter("poison-1", "<script>alert(1)</script>", raw='"><img src=x>'))
    page = client.get("/dashboard/dead", headers=SIGNED_IN).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x&gt;" in page
    assert "<script>alert" not in page and "<img src=x>" not in page
    filtered = client.get("/dashboard/dead", params={"match": '"><b>'}, headers=SIGNED_IN).text
    assert "<b>" not in filtered and "&lt;b&gt;" in filtered


def test_a_form_without_the_dashboards_token_changes_nothing(
    client: TestClient, producer: Producer, letters: DeadLetters, redis_url: str
) -> None:
    job_id = producer.enqueue(wire_message())
    finish(redis_url, [], {job_id: CLOSED})
    page = client.get("/dashboard/dead", headers=SIGNED_IN)
    other_token = client.get("/dashboard/dead", headers=basic("x", TOKENS[1]))
    for forged in ({}, {"form_token": "0" * 64}, {"form_token": form_token(other_token)}):
        for action in ("replay", "purge"):
            answer = client.post(
                f"/dashboard/dead/{action}", data={"id": job_id, **forged}, headers=SIGNED_IN
            )
            assert answer.status_code == 403
            assert answer.json()["type"] == "urn:zixflow-queue:problem:form-token"
    assert [letter.id for letter in letters.entries()] == [job_id]

    answer = client.post(
        "/dashboard/dead/replay",
        data={"id": job_id, "form_token": form_token(page)},
        headers=SIGNED_IN,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/dead?replayed=1"
    assert letters.entries() == []
    status = producer.get_status(job_id)
    assert status is not None and status.state == "queued"


def test_replay_and_purge_all_that_match_the_filter(
    client: TestClient, producer: Producer, letters: DeadLetters, redis_url: str
) -> None:
    closed, invalid, also_closed = producer.enqueue_many(wire_messages(3))
    finish(redis_url, [], {closed: CLOSED, invalid: "HTTP 400: Invalid data", also_closed: CLOSED})
    token = form_token(client.get("/dashboard/dead", headers=SIGNED_IN))

    answer = client.post(
        "/dashboard/dead/purge",
        data={"all": "1", "match": "re-engagement", "form_token": token},
        headers=SIGNED_IN,
    )
    assert answer.headers["location"] == "/dashboard/dead?match=re-engagement&purged=2"
    assert [letter.id for letter in letters.entries()] == [invalid]
    shown = client.get(answer.headers["location"], headers=SIGNED_IN).text
    assert "Purged 2 dead letters." in shown

    answer = client.post(
        "/dashboard/dead/replay", data={"all": "1", "form_token": token}, headers=SIGNED_IN
    )
    assert answer.headers["location"] == "/dashboard/dead?replayed=1"
    assert letters.entries() == []
    nothing = client.post("/dashboard/dead/replay", data={"form_token": token}, headers=SIGNED_IN)
    assert nothing.status_code == 400
