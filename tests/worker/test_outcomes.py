"""Classification at the boundary: recorded Zixflow answers and every failure a send raises."""

from __future__ import annotations

import email.utils
import inspect
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

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
    if "reason" in case:
        assert case["reason"] in outcome.reason
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


def aiohttp_exception_classes() -> list[type[aiohttp.ClientError]]:
    """Every ClientError subclass that aiohttp exports, but the websocket ones."""
    return [
        cls
        for cls in vars(aiohttp).values()
        if inspect.isclass(cls)
        and issubclass(cls, aiohttp.ClientError)
        and "WS" not in cls.__name__
    ]


def test_every_exception_a_send_can_raise_has_a_kind() -> None:
    assert len(aiohttp_exception_classes()) > 15  # the walk found them
    classes = [*aiohttp_exception_classes(), TimeoutError, ValueError, RuntimeError, KeyError]
    assert all(any(base in EXCEPTION_KINDS for base in cls.__mro__) for cls in classes)


def test_an_unexpected_exception_fails_the_send_naming_only_its_class() -> None:
    secret = "sk-9f8e7d\n"
    outcome = classify_exception(ValueError(f"Invalid header value b'Bearer {secret}'"))
    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.reason == "request cannot be made as configured: ValueError"


def connection_key() -> Any:
    return SimpleNamespace(host="api.zixflow.test", port=443, ssl=True)


def request_info() -> aiohttp.RequestInfo:
    url = URL("https://api.zixflow.test/send")
    return aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (aiohttp.ClientConnectorError(connection_key(), ConnectionRefusedError()), K.TRANSIENT),
        (aiohttp.ServerDisconnectedError(), K.TRANSIENT),
        (aiohttp.ClientOSError(104, "reset"), K.TRANSIENT),
        (aiohttp.ConnectionTimeoutError(), K.TRANSIENT),
        (aiohttp.ClientHttpProxyError(request_info(), ()), K.TRANSIENT),
        (aiohttp.ClientError(), K.TRANSIENT),
        (aiohttp.SocketTimeoutError(), K.AMBIGUOUS),
        (TimeoutError(), K.AMBIGUOUS),  # what asyncio raises for a deadline
        (aiohttp.ClientPayloadError("broken"), K.AMBIGUOUS),
        (aiohttp.ClientResponseError(request_info(), (), status=400), K.AMBIGUOUS),
        (aiohttp.InvalidURL("api.zixflow.test"), K.PERMANENT),
        (aiohttp.InvalidUrlClientError("ftp://x"), K.PERMANENT),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_exception_kinds(exc: BaseException, kind: OutcomeKind) -> None:
    outcome = classify_exception(exc)
    assert (outcome.kind, outcome.status_code, outcome.body) == (kind, None, None)
    assert outcome.reason.endswith(f": {type(exc).__name__}")


def test_unlisted_subclass_takes_its_nearest_base_kind() -> None:
    class SlowAnswer(aiohttp.SocketTimeoutError):
        pass

    assert classify_exception(SlowAnswer()).kind is K.AMBIGUOUS


def test_exception_reason_carries_no_request_details() -> None:
    exc = aiohttp.ClientResponseError(
        request_info(), (), status=400, message="bad header: 'Bearer sk-secret'"
    )

    outcome = classify_exception(exc)

    assert outcome.reason == (
        "no complete answer, the message may have been sent: ClientResponseError"
    )
    assert "sk-secret" not in repr(outcome)
