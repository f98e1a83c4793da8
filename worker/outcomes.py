"""What one send to Zixflow came to: pure functions from a response or an exception."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import aiohttp

from worker.backoff import parse_retry_after
from worker.redaction import redact

_REASON_LIMIT = 500


class OutcomeKind(StrEnum):
    """The families of outcome, grouped by what the worker does next."""

    SENT = "sent"
    TRANSIENT = "transient"
    THROTTLED = "throttled"
    PERMANENT = "permanent"
    CREDENTIALS = "credentials"
    AMBIGUOUS = "ambiguous"

    @property
    def retryable(self) -> bool:
        """Whether trying again later can change the outcome (an ambiguous one may send twice)."""
        return self in _RETRYABLE


_RETRYABLE = frozenset({OutcomeKind.TRANSIENT, OutcomeKind.THROTTLED, OutcomeKind.AMBIGUOUS})


@dataclass(frozen=True, slots=True)
class Outcome:
    """One send's result: its kind, a reason a person can read, and what Zixflow said."""

    kind: OutcomeKind
    reason: str
    status_code: int | None = None
    body: dict[str, Any] | None = None
    retry_after: float | None = None
    whatsapp_code: int | None = None


_K = OutcomeKind

WHATSAPP_KINDS: Mapping[int, OutcomeKind] = MappingProxyType({
    **dict.fromkeys((1, 2, 131000, 131016, 131057), _K.TRANSIENT),
    # 131056 is the per-recipient pair rate: the recipient pacing, not Retry-After, spaces it.
    **dict.fromkeys((130429, 131056), _K.THROTTLED),
    **dict.fromkeys((100, 131008, 131009, 131026, 131047), _K.PERMANENT),
    190: _K.CREDENTIALS,
})  # fmt: skip
"""WhatsApp Cloud API error codes that Zixflow passes through, by the kind each one means."""

_STATUS_KINDS: Mapping[int, OutcomeKind] = MappingProxyType({
    401: _K.CREDENTIALS,
    403: _K.CREDENTIALS,
    408: _K.TRANSIENT,  # the server gave up waiting for the request: nothing was processed
    429: _K.THROTTLED,
})  # fmt: skip

_WORDING: tuple[tuple[re.Pattern[str], OutcomeKind], ...] = (
    (re.compile(r"unauthori[sz]ed|no token provided", re.IGNORECASE), _K.CREDENTIALS),
    (re.compile(r"invalid data provided|re-?engagement|24[- ]hour", re.IGNORECASE), _K.PERMANENT),
)
"""Zixflow's own failure messages, used only when neither a code nor the status says more."""

_CODE_IN_TEXT = re.compile(r"\(#(\d+)\)")


def classify_response(
    status_code: int, headers: Mapping[str, str], body: bytes, *, secret: str = ""
) -> Outcome:
    """Success is HTTP 2xx with `"status": true`; anything else is a failure, classified.

    `secret` (the API key) is redacted from the decoded answer before anything reads it.
    """
    document = redact(_json_object(body), secret)
    message = _message(document)
    if _is_2xx(status_code) and document is not None and document.get("status") is True:
        return Outcome(_K.SENT, message or "sent", status_code, document)
    code = _whatsapp_code(document, message)
    kind = _failure_kind(status_code, document, code, message)
    reason = f"HTTP {status_code}: {_clip(message) if message else _describe(body, document)}"
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    return Outcome(kind, reason, status_code, document, retry_after, code)


def _failure_kind(
    status_code: int, document: Mapping[str, Any] | None, code: int | None, message: str
) -> OutcomeKind:
    # A WhatsApp code is the most specific fact there is, so it beats the HTTP status: HTTP 400
    # carrying (#131000) is WhatsApp's passing trouble, HTTP 500 carrying (#131047) a closed
    # window that no retry opens. Next the status (a 5xx says "later" whatever the wording
    # claims), and only then Zixflow's wording.
    for kind in (_code_kind(code), _status_kind(status_code), _wording_kind(message)):
        if kind is not None:
            return kind
    if _is_2xx(status_code) and (document is None or document.get("status") is not False):
        # A 2xx we cannot read: the request was accepted, so the message may have gone out.
        return _K.AMBIGUOUS
    # A deliberate refusal (`status: false`, another 4xx): the same request would be refused again.
    return _K.PERMANENT


def _is_2xx(status_code: int) -> bool:
    return 200 <= status_code < 300


def _code_kind(code: int | None) -> OutcomeKind | None:
    return None if code is None else WHATSAPP_KINDS.get(code)


def _status_kind(status_code: int) -> OutcomeKind | None:
    if 500 <= status_code < 600:
        return _K.TRANSIENT
    return _STATUS_KINDS.get(status_code)


def _wording_kind(message: str) -> OutcomeKind | None:
    return next((kind for pattern, kind in _WORDING if pattern.search(message)), None)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _message(document: Mapping[str, Any] | None) -> str:
    """Zixflow's `message`, else a nested `error`'s (Graph-style object or plain string)."""
    if document is None:
        return ""
    error = document.get("error")
    nested = error.get("message") if isinstance(error, Mapping) else error
    for candidate in (document.get("message"), nested):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return ""


def _whatsapp_code(document: Mapping[str, Any] | None, message: str) -> int | None:
    found = _CODE_IN_TEXT.search(message)
    if found:
        return int(found.group(1))
    error = document.get("error") if document else None
    for source in (error, document):
        code = source.get("code") if isinstance(source, Mapping) else None
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        if isinstance(code, str) and code.isascii() and code.isdigit():
            return int(code)
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively even in a plain dict."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _describe(body: bytes, document: Mapping[str, Any] | None) -> str:
    if not body.strip():
        return "empty body"
    if document is None:
        return "the body is not a JSON object"
    return "no message in the body"


def _clip(text: str) -> str:
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"


EXCEPTION_KINDS: Mapping[type[BaseException], OutcomeKind] = MappingProxyType({
    aiohttp.ClientError: _K.TRANSIENT,  # anything aiohttp adds later: assume it may pass
    # No connection, or it broke before an answer: the stale keep-alive case is the common one.
    aiohttp.ClientConnectionError: _K.TRANSIENT,
    aiohttp.ConnectionTimeoutError: _K.TRANSIENT,  # also a ServerTimeoutError, but nothing was sent
    # The request went out and the answer never came, or broke off: it may have been sent.
    aiohttp.ServerTimeoutError: _K.AMBIGUOUS,
    TimeoutError: _K.AMBIGUOUS,
    aiohttp.ClientPayloadError: _K.AMBIGUOUS,
    aiohttp.ClientResponseError: _K.AMBIGUOUS,  # an answer came but could not be read
    # The request cannot be made as configured: the same one would fail again.
    aiohttp.InvalidURL: _K.PERMANENT,
    aiohttp.ClientHttpProxyError: _K.TRANSIENT,  # the proxy's own trouble
    # Anything else (a header value the client refuses, a bug): the same request would fail
    # again, so the job fails with the exception's class, never its text (it may hold the key).
    Exception: _K.PERMANENT,
})  # fmt: skip
"""Every failure a send can raise, by kind; a class not named here takes its nearest base's."""


_EXCEPTION_REASONS: Mapping[OutcomeKind, str] = MappingProxyType({
    _K.TRANSIENT: "connection failed",
    _K.AMBIGUOUS: "no complete answer, the message may have been sent",
    _K.PERMANENT: "request cannot be made as configured",
})  # fmt: skip


def classify_exception(exc: BaseException) -> Outcome:
    """Map a failed send to an outcome; the reason names only the exception's class."""
    kind = next(
        (EXCEPTION_KINDS[cls] for cls in type(exc).__mro__ if cls in EXCEPTION_KINDS),
        _K.TRANSIENT,
    )
    return Outcome(kind, f"{_EXCEPTION_REASONS[kind]}: {type(exc).__name__}")
