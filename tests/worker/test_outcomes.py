"""Classification at the boundary: recorded Zixflow answers and every `requests` failure."""

from __future__ import annotations

import email.utils
import http.client
import inspect
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from requests import exceptions as rex
from urllib3.exceptions import ProtocolError

from worker.outcomes import (
    EXCEPTION_KINDS,
    WHATSAPP_KINDS,
    OutcomeKind,
    classify_exception,
    classify_response,
)

K = OutcomeKind
CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "data" / "zixflow_responses.json").read_text()
)


SECRET_HEADERS = {
    "Set-Cookie": "session=hdr-7c1e9a0f; HttpOnly",
    "X-Upstream-Token": "hdr-secret-51d2b8",
    "Authorization": "Bearer hdr-key-0a9f33",
}
"""Headers a proxy might echo: their values must never reach an outcome's reason."""


def json_object(text: str) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_recorded_response(case: dict[str, Any]) -> None:
    outcome = classify_response(case["status"], case["headers"], case["body"].encode())

    assert outcome.kind is K(case["kind"])
    assert outcome.status_code == case["status"]
    assert outcome.whatsapp_code == case.get("code")
    assert outcome.retry_after == case.get("retry_after")
    assert case.get("reason", "") in outcome.reason
    assert outcome.body == json_object(case["body"])
    if outcome.kind is not K.SENT:
        assert outcome.reason.startswith(f"HTTP {case['status']}: ")


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_reason_never_carries_a_header_value(case: dict[str, Any]) -> None:
    headers = {**case["headers"], **SECRET_HEADERS}
    outcome = classify_response(case["status"], headers, case["body"].encode())
    assert outcome.kind is K(case["kind"])  # the extra headers change nothing
    assert not any(value in outcome.reason for value in SECRET_HEADERS.values())
    assert not any(value in repr(outcome) for value in SECRET_HEADERS.values())


def test_recorded_cases_are_well_formed_and_cover_every_kind() -> None:
    names = [case["name"] for case in CASES]
    assert len(set(names)) == len(names)
    assert all(isinstance(case["body"], str) for case in CASES)
    assert all(set(case) >= {"name", "status", "headers", "body", "kind"} for case in CASES)
    assert {K(case["kind"]) for case in CASES} == set(K)


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 131000), (200, 131047), (429, 130429), (400, 131056), (400, 190), (400, 100)],
)
def test_the_table_covers_each_code_on_each_status(status: int, code: int) -> None:
    assert any(case["status"] == status and case.get("code") == code for case in CASES)


def test_whatsapp_codes_follow_the_retry_class_table() -> None:
    documented = {
        K.TRANSIENT: {131000, 131016, 2, 1, 131057},
        K.THROTTLED: {130429, 131056},
        K.PERMANENT: {131047, 131026, 131008, 131009, 100},
        K.CREDENTIALS: {190},
    }
    assert dict(WHATSAPP_KINDS) == {
        code: kind for kind, codes in documented.items() for code in codes
    }


def test_failure_reason_names_status_and_message() -> None:
    body = b'{"status": false, "message": "Invalid data Provided"}'
    assert classify_response(400, {}, body).reason == "HTTP 400: Invalid data Provided"


def test_long_message_is_clipped() -> None:
    body = json.dumps({"status": False, "message": "x" * 5000}).encode()
    reason = classify_response(400, {}, body).reason
    assert len(reason) < 600
    assert reason.endswith("…")


def test_non_json_body_is_described_not_copied() -> None:
    outcome = classify_response(500, {}, b"<html>" + b"stack trace " * 100 + b"</html>")
    assert "stack trace" not in outcome.reason


def test_future_http_date_retry_after_is_honoured() -> None:
    header = email.utils.formatdate(time.time() + 90, usegmt=True)
    body = b'{"status": false, "message": "(#130429) Rate limit hit :: throughput reached."}'
    outcome = classify_response(429, {"Retry-After": header}, body)
    assert (outcome.kind, outcome.whatsapp_code) == (K.THROTTLED, 130429)
    assert outcome.retry_after is not None
    assert 85 <= outcome.retry_after <= 90


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00garbage", b"[" * 100_000, b"null", b'"Message sent successfully"'],
    ids=["bad utf-8", "deeply nested", "null", "json string"],
)
def test_unreadable_2xx_is_ambiguous(body: bytes) -> None:
    outcome = classify_response(200, {}, body)
    assert (outcome.kind, outcome.body) == (K.AMBIGUOUS, None)


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        (K.SENT, False),
        (K.TRANSIENT, True),
        (K.THROTTLED, True),
        (K.AMBIGUOUS, True),
        (K.PERMANENT, False),
        (K.CREDENTIALS, False),
    ],
)
def test_retryable(kind: OutcomeKind, retryable: bool) -> None:
    assert kind.retryable is retryable


def request_exception_classes() -> list[type[rex.RequestException]]:
    """Every RequestException subclass that `requests.exceptions` defines."""
    return [
        cls
        for cls in vars(rex).values()
        if inspect.isclass(cls) and issubclass(cls, rex.RequestException)
    ]


def instance_of(cls: type[rex.RequestException]) -> rex.RequestException:
    if issubclass(cls, json.JSONDecodeError):
        return cls("Expecting value", "<html>", 0)
    return cls("failed")


def test_every_requests_exception_is_mapped_deliberately() -> None:
    classes = request_exception_classes()
    assert len(classes) > 15  # the walk found them
    assert set(classes) <= set(EXCEPTION_KINDS)


@pytest.mark.parametrize("cls", request_exception_classes(), ids=lambda cls: cls.__name__)
def test_every_requests_exception_classifies_by_its_own_entry(
    cls: type[rex.RequestException],
) -> None:
    outcome = classify_exception(instance_of(cls))
    assert outcome.kind is EXCEPTION_KINDS[cls]
    assert outcome.reason.endswith(f": {cls.__name__}")


def dropped_connection() -> rex.ConnectionError:
    """What requests raises when the server closes the connection without answering."""
    cause = ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))
    return rex.ConnectionError(cause)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (rex.ConnectTimeout(), K.TRANSIENT),
        (rex.ConnectionError(), K.TRANSIENT),
        (dropped_connection(), K.TRANSIENT),
        (rex.SSLError(), K.TRANSIENT),
        (rex.ProxyError(), K.TRANSIENT),
        (rex.ReadTimeout(), K.AMBIGUOUS),
        (rex.Timeout(), K.AMBIGUOUS),
        (rex.ChunkedEncodingError(), K.AMBIGUOUS),
        (rex.ContentDecodingError(), K.AMBIGUOUS),
        (rex.InvalidURL(), K.PERMANENT),
        (rex.MissingSchema(), K.PERMANENT),
        (rex.InvalidHeader(), K.PERMANENT),
        (rex.InvalidSchema(), K.PERMANENT),
        (rex.URLRequired(), K.PERMANENT),
        (rex.InvalidJSONError(), K.PERMANENT),
        (rex.TooManyRedirects(), K.PERMANENT),
        (rex.RetryError(), K.TRANSIENT),
        (rex.RequestException(), K.TRANSIENT),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_exception_kinds(exc: rex.RequestException, kind: OutcomeKind) -> None:
    outcome = classify_exception(exc)
    assert (outcome.kind, outcome.status_code, outcome.body) == (kind, None, None)


def test_unlisted_subclass_takes_its_nearest_base_kind() -> None:
    class SlowAnswer(rex.ReadTimeout):
        pass

    assert classify_exception(SlowAnswer()).kind is K.AMBIGUOUS


def test_exception_reason_carries_no_request_details() -> None:
    request = requests.Request(
        "POST", "https://api.zixflow.test/send", headers={"Authorization": "Bearer sk-secret"}
    ).prepare()
    exc = rex.InvalidHeader("bad header value: 'Bearer sk-secret'", request=request)

    outcome = classify_exception(exc)

    assert outcome.reason == "request cannot be made as configured: InvalidHeader"
    assert "sk-secret" not in repr(outcome)
