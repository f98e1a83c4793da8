"""The sandbox over real HTTP: Zixflow's answer shapes, every fault, scripts, the log, control."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support import BEARER, SANDBOX_KEY, send, wait_until, wire_message
from worker.outcomes import OutcomeKind, classify_response
from zixflow_queue.sandbox import FaultPlan, Sandbox, SandboxClient
from zixflow_queue.sandbox.faults import KINDS

ALICE, BOB = "919876543210", "14155550100"
SUCCESS = {"status": True, "message": "Message sent successfully"}
HEX24 = re.compile(r"^[0-9a-f]{24}$")


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    """One sandbox for the module: stopping one costs half a second (its poll interval)."""
    with Sandbox(api_key=SANDBOX_KEY) as server:
        yield server


@pytest.fixture
def sandbox(shared_sandbox: Sandbox) -> Sandbox:
    """The module's sandbox, back to a clean log and the default plan."""
    shared_sandbox.configure(FaultPlan())
    shared_sandbox.reset()
    return shared_sandbox


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """One keep-alive client session, closed after the test."""
    with requests.Session() as http:
        yield http


# --- authentication and validation ---


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "No token provided"),
        ("Bearer wrong-key", "Unauthorised"),
        (f"Bearer {SANDBOX_KEY}x", "Unauthorised"),
        (f"Basic {SANDBOX_KEY}", "Unauthorised"),
        (SANDBOX_KEY, "Unauthorised"),
    ],
    ids=["missing", "wrong", "longer", "basic", "no-scheme"],
)
def test_missing_or_wrong_bearer_is_refused(
    session: requests.Session, sandbox: Sandbox, authorization: str | None, message: str
) -> None:
    answer = send(session, sandbox.url, authorization=authorization)

    assert answer.status_code == 401
    assert answer.json() == {"status": False, "message": message}
    assert answer.headers["Content-Type"] == "application/json"
    (entry,) = sandbox.requests()
    assert (entry["answer"], entry["authorized"]) == ("unauthorised", False)
    assert "to" not in entry


def invalid_title() -> dict[str, Any]:
    message = wire_message()
    message["interactive"]["action"]["buttons"][0]["reply"]["title"] = "t" * 21  # type: ignore[index]
    return message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        json.dumps(wire_message(to="12")).encode(),
        json.dumps(invalid_title()).encode(),
        json.dumps({**wire_message(), "priority": "high"}).encode(),
    ],
    ids=["empty", "not-json", "bad-utf8", "list", "null", "short-phone", "long-title", "extra"],
)
def test_invalid_body_is_invalid_data(
    session: requests.Session, sandbox: Sandbox, body: bytes
) -> None:
    answer = send(session, sandbox.url, data=body)

    assert answer.status_code == 400
    assert answer.json() == {"status": False, "message": "Invalid data Provided"}
    assert [entry["answer"] for entry in sandbox.requests()] == ["invalid"]


def test_deeply_nested_json_is_invalid_data(session: requests.Session, sandbox: Sandbox) -> None:
    answer = send(session, sandbox.url, data=b"[" * 100_000)
    assert answer.status_code == 400
    assert answer.json() == {"status": False, "message": "Invalid data Provided"}


# --- success ---


def test_success_shape(session: requests.Session, sandbox: Sandbox) -> None:
    answer = send(session, sandbox.url)

    assert answer.status_code == 200
    assert answer.json() == SUCCESS
    assert classify_response(200, answer.headers, answer.content).kind is OutcomeKind.SENT


def test_submission_status_success_names_campaign_and_message(
    session: requests.Session, sandbox: Sandbox
) -> None:
    message = wire_message(submissionStatus=True)

    answers = [send(session, sandbox.url, message, job_id=f"job-{n}").json() for n in range(3)]

    for answer in answers:
        assert set(answer) == {"status", "message", "campaignId", "messageId"}
        assert (answer["status"], answer["message"]) == (True, "WhatsApp sent successfully!")
        assert HEX24.match(answer["campaignId"]) and HEX24.match(answer["messageId"])
    assert len({answer["messageId"] for answer in answers}) == 3
    assert [entry["submissionStatus"] for entry in sandbox.requests()] == [True] * 3


def test_latency_is_added(session: requests.Session, sandbox: Sandbox) -> None:
    sandbox.configure(FaultPlan(latency_ms=150))

    started = time.monotonic()
    answer = send(session, sandbox.url)
    elapsed = time.monotonic() - started

    assert answer.json() == SUCCESS
    assert elapsed >= 0.15


# --- faults ---


@pytest.mark.parametrize(
    ("kind", "status", "fragment", "outcome"),
    [
        ("error500", 500, "(#2) Service temporarily unavailable", OutcomeKind.TRANSIENT),
        ("throttle429", 429, "(#130429) Rate limit hit", OutcomeKind.THROTTLED),
        ("window", 400, "(#131047) Re-engagement message", OutcomeKind.PERMANENT),
        ("invalid", 400, "Invalid data Provided", OutcomeKind.PERMANENT),
        ("unauthorised", 401, "Unauthorised", OutcomeKind.CREDENTIALS),
    ],
)
def test_each_failure_kind_is_answered_as_specified(
    session: requests.Session,
    sandbox: Sandbox,
    kind: str,
    status: int,
    fragment: str,
    outcome: OutcomeKind,
) -> None:
    sandbox.configure(FaultPlan(rates={kind: 1.0}, retry_after=2.5))

    answer = send(session, sandbox.url)

    assert answer.status_code == status
    body = answer.json()
    assert body["status"] is False and fragment in body["message"]
    assert answer.headers.get("Retry-After") == ("2.5" if kind == "throttle429" else None)
    classified = classify_response(answer.status_code, answer.headers, answer.content)
    assert classified.kind is outcome
    assert classified.retry_after == (2.5 if kind == "throttle429" else None)
    assert [entry["answer"] for entry in sandbox.requests()] == [kind]


def test_drop_hangs_up_without_an_answer(session: requests.Session, sandbox: Sandbox) -> None:
    sandbox.configure(FaultPlan(rates={"drop": 1.0}))

    with pytest.raises(requests.ConnectionError):
        send(session, sandbox.url)

    assert [entry["answer"] for entry in sandbox.requests()] == ["drop"]


def test_slow_answers_late_but_succeeds(session: requests.Session, sandbox: Sandbox) -> None:
    sandbox.configure(FaultPlan(rates={"slow": 1.0}, slow_seconds=0.3))

    started = time.monotonic()
    answer = send(session, sandbox.url)

    assert time.monotonic() - started >= 0.3
    assert answer.json() == SUCCESS
    assert [entry["answer"] for entry in sandbox.requests()] == ["slow"]


def test_slow_beyond_the_read_timeout_is_a_read_timeout(
    session: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(rates={"slow": 1.0}, slow_seconds=1.0))
    with pytest.raises(requests.ReadTimeout):
        send(session, sandbox.url, timeout=0.2)
    # The answer is logged once the sleep is over; wait for it so no later test sees it.
    wait_until(sandbox.requests, timeout=5, what="the slow answer to be logged")


def test_script_plays_per_recipient_then_answers_ok(
    session: requests.Session, sandbox: Sandbox
) -> None:
    sandbox.configure(FaultPlan(script={ALICE: ["error500", "throttle429", "ok", "window"]}))

    statuses = []
    for n in range(5):
        statuses.append(("alice", send(session, sandbox.url, wire_message(to=ALICE)).status_code))
        statuses.append(
            ("bob", send(session, sandbox.url, wire_message(to=BOB), job_id=f"b{n}").status_code)
        )

    assert [status for who, status in statuses if who == "alice"] == [500, 429, 200, 400, 200]
    assert [status for who, status in statuses if who == "bob"] == [200] * 5


def test_scripts_key_on_the_normalised_number(session: requests.Session, sandbox: Sandbox) -> None:
    sandbox.configure(FaultPlan(script={ALICE: ["window"]}))
    answer = send(session, sandbox.url, wire_message(to="+91 98765-43210"))
    assert answer.status_code == 400


RATES = {"error500": 0.2, "throttle429": 0.1, "window": 0.05}


def answers_for(session: requests.Session, sandbox: Sandbox, count: int) -> list[str]:
    for n in range(count):
        send(session, sandbox.url, job_id=f"job-{n}")
    return [entry["answer"] for entry in sandbox.requests()[-count:]]


def test_seeded_rates_are_roughly_honoured(session: requests.Session, sandbox: Sandbox) -> None:
    sandbox.configure(FaultPlan(seed=20240601, rates=RATES))

    counts = Counter(answers_for(session, sandbox, 1000))

    assert 140 <= counts["error500"] <= 260
    assert 60 <= counts["throttle429"] <= 140
    assert 20 <= counts["window"] <= 85
    assert 550 <= counts["ok"] <= 750
    assert set(counts) == {"ok", *RATES}
    assert sandbox.stats()["answers"] == dict(counts)


def test_the_same_seed_gives_the_same_answers(session: requests.Session, sandbox: Sandbox) -> None:
    sandbox.configure(FaultPlan(seed=7, rates=RATES))
    first = answers_for(session, sandbox, 100)
    sandbox.configure(FaultPlan(seed=7, rates=RATES))
    second = answers_for(session, sandbox, 100)
    sandbox.configure(FaultPlan(seed=8, rates=RATES))
    third = answers_for(session, sandbox, 100)
    assert first == second != third


# --- the log and stats ---


def test_log_and_stats(session: requests.Session, sandbox: Sandbox) -> None:
    sandbox.configure(FaultPlan(script={BOB: ["error500"]}))
    before = time.time()
    send(session, sandbox.url, job_id="job-1")
    send(session, sandbox.url, job_id="job-1")  # a retry after a lost answer: sent twice
    send(session, sandbox.url, wire_message(phoneId="555", submissionStatus=True), job_id="job-2")
    send(session, sandbox.url, wire_message(to=BOB), job_id="job-3")
    send(session, sandbox.url, authorization="Bearer wrong", job_id="job-4")

    log = sandbox.requests()

    assert [(e["job_id"], e["answer"]) for e in log] == [
        ("job-1", "ok"), ("job-1", "ok"), ("job-2", "ok"), ("job-3", "error500"),
        ("job-4", "unauthorised"),
    ]  # fmt: skip
    assert log[2] | {"t": 0} == {
        "t": 0, "job_id": "job-2", "authorized": True, "to": ALICE, "phoneId": "555",
        "submissionStatus": True, "answer": "ok",
    }  # fmt: skip
    assert before <= log[0]["t"] <= log[-1]["t"] <= time.time()
    assert sandbox.stats() == {
        "requests": 5,
        "answers": {"ok": 3, "error500": 1, "unauthorised": 1},
        "jobs": 4,
        "sent_jobs": 2,
        "duplicates": 1,
        "replies": {"posted": 0, "failed": 0, "retries": 0, "waiting": 0, "last_error": ""},
    }


def test_the_log_never_holds_the_key(session: requests.Session, sandbox: Sandbox) -> None:
    send(session, sandbox.url)
    send(session, sandbox.url, authorization=f"{BEARER}-old")
    send(session, sandbox.url, data=b"{}")
    with SandboxClient(sandbox.url) as control:
        stored = json.dumps([sandbox.requests(), control.requests(), control.stats()])

    assert SANDBOX_KEY not in stored
    assert "Bearer" not in stored


def test_requests_returns_a_copy(session: requests.Session, sandbox: Sandbox) -> None:
    send(session, sandbox.url)
    sandbox.requests().clear()
    assert len(sandbox.requests()) == 1


# --- control endpoints ---


@pytest.fixture
def control(sandbox: Sandbox) -> Iterator[SandboxClient]:
    with SandboxClient(sandbox.url + "/") as client:
        yield client


def test_control_configure_requests_stats_reset(
    session: requests.Session, sandbox: Sandbox, control: SandboxClient
) -> None:
    assert control.healthy()
    plan = FaultPlan(retry_after=3.0, script={ALICE: ["throttle429", "window"]})

    control.configure(plan)
    answers = [send(session, sandbox.url, job_id=f"job-{n}") for n in range(3)]

    assert [answer.status_code for answer in answers] == [429, 400, 200]
    assert answers[0].headers["Retry-After"] == "3"
    current = session.get(f"{sandbox.url}/_sandbox/faults", timeout=10).json()
    assert FaultPlan.from_dict(current) == plan
    assert [entry["job_id"] for entry in control.requests()] == ["job-0", "job-1", "job-2"]
    assert [entry["job_id"] for entry in control.requests(since=2)] == ["job-2"]
    assert control.requests(since=3) == []
    assert control.stats() == sandbox.stats()
    assert control.stats()["answers"] == {"throttle429": 1, "window": 1, "ok": 1}


def test_control_reset_forgets_log_and_script_but_keeps_rates(
    session: requests.Session, sandbox: Sandbox, control: SandboxClient
) -> None:
    control.configure(FaultPlan(rates={"error500": 1.0}, script={BOB: ["window"]}))
    send(session, sandbox.url)

    control.reset()

    assert control.requests() == [] and control.stats()["requests"] == 0
    assert send(session, sandbox.url, wire_message(to=BOB)).status_code == 500  # script forgotten
    assert send(session, sandbox.url).status_code == 500  # rates kept


@pytest.mark.parametrize(
    ("plan", "error"),
    [
        ({"rates": {"boom": 0.5}}, "unknown answer kinds ['boom']"),
        ({"rates": {"error500": 0.7, "drop": 0.6}}, "add up to at most 1"),
        ({"speed": 3}, "unexpected keyword argument 'speed'"),
    ],
)
def test_control_refuses_a_bad_plan_and_keeps_the_old_one(
    session: requests.Session,
    sandbox: Sandbox,
    control: SandboxClient,
    plan: dict[str, Any],
    error: str,
) -> None:
    control.configure(FaultPlan(rates={"window": 1.0}))

    answer = session.put(f"{sandbox.url}/_sandbox/faults", json=plan, timeout=10)

    assert answer.status_code == 400
    assert error in answer.json()["error"]
    assert send(session, sandbox.url).status_code == 400  # still the window plan


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/_sandbox/nothing"), ("POST", "/api/v1/other"), ("PUT", "/_sandbox/stats")],
)
def test_unknown_paths_are_404(
    session: requests.Session, sandbox: Sandbox, method: str, path: str
) -> None:
    answer = session.request(method, sandbox.url + path, timeout=10)
    assert answer.status_code == 404
    assert answer.json()["status"] is False


def test_healthy_is_false_when_nothing_answers() -> None:
    with Sandbox(api_key=SANDBOX_KEY) as stopped:
        with SandboxClient(stopped.url, timeout=1.0) as control:
            assert control.healthy()
        stopped.stop()
        with SandboxClient(stopped.url, timeout=1.0) as control:
            assert not control.healthy()


def test_a_stopped_sandbox_stops_answering_open_connections(session: requests.Session) -> None:
    with Sandbox(api_key=SANDBOX_KEY) as stopped:
        # Leaves a keep-alive connection open.
        assert send(session, stopped.url).status_code == 200

        stopped.stop()

        with pytest.raises(requests.ConnectionError):
            send(session, stopped.url)


# --- the fault plan ---


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rates": {"boom": 0.1}}, r"unknown answer kinds \['boom'\]"),
        ({"script": {ALICE: ["ok", "explode"]}}, r"unknown answer kinds \['explode'\]"),
        ({"rates": {"error500": 0.6, "throttle429": 0.5}}, "add up to at most 1"),
        ({"rates": {"error500": 1.5}}, "between 0 and 1"),
        ({"rates": {"error500": -0.1}}, "between 0 and 1"),
        ({"latency_ms": -1}, "latency_ms must be a finite number"),
        ({"retry_after": "soon"}, "retry_after must be"),
        ({"slow_seconds": float("nan")}, "slow_seconds must be"),
        ({"rates": ["error500"]}, "must be mappings"),
        ({"script": {ALICE: "error500"}}, "list of answer kinds"),
        ({"seed": [1]}, "seed must be"),
    ],
)
def test_fault_plan_validation(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultPlan(**arguments)


@pytest.mark.parametrize(
    "plan",
    [
        FaultPlan(),
        FaultPlan(rates=dict.fromkeys(KINDS - {"ok"}, 1 / len(KINDS)), seed=3),
        FaultPlan(latency_ms=5, retry_after=0.5, slow_seconds=2, script={ALICE: ["drop"]}),
    ],
)
def test_fault_plan_json_round_trip(plan: FaultPlan) -> None:
    assert FaultPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
