"""Errors as RFC 9457 problem details (`application/problem+json`), and the app's handlers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from starlette.exceptions import HTTPException

from producer.errors import IdempotencyConflict, OutcomeUnknown, StorageError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:zixflow-queue:problem:"
"""Problem types are URNs: names to compare, not pages to fetch (the README lists them)."""
RETRY_AFTER_SECONDS = 5
"""How long a client should wait before trying again after a 503."""
DETAILED = 3
"""Invalid fields a validation problem's `detail` names; `errors` lists them all."""


class Problem(Exception):
    """An error answer: its status, its type and title, what went wrong, and for which fields.

    The type defaults to the status's own name (`not-found`, `unsupported-media-type`); a
    specific one (`validation`, `outcome-unknown`) tells apart answers that share a status.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str = "",
        title: str = "",
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        phrase = HTTPStatus(status).phrase
        self.status = status
        self.detail = detail
        self.kind = kind or phrase.lower().replace(" ", "-")
        self.title = title or phrase
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The problem details object."""
        body: dict[str, Any] = {
            "type": TYPE_PREFIX + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body

    def response(self) -> Response:
        """The problem as an HTTP response."""
        content = json.dumps(self.body(), ensure_ascii=False).encode()
        return Response(content, self.status, self.headers, media_type=PROBLEM_JSON)


def invalid(errors: Sequence[Mapping[str, str]], detail: str = "") -> Problem:
    """422 naming each invalid field: `[{"path": <dotted wire path>, "message": ...}]`."""
    if not detail:
        count = len(errors)
        noun = "field is" if count == 1 else "fields are"
        shown = "; ".join(f"{e['path'] or '(body)'}: {e['message']}" for e in errors[:DETAILED])
        more = f"; and {count - DETAILED:,} more" if count > DETAILED else ""
        detail = f"{count:,} {noun} invalid: {shown}{more}"
    return Problem(422, detail, kind="validation", title="Invalid request", errors=errors)


def unavailable(detail: str, *, kind: str = "unavailable") -> Problem:
    """503 with Retry-After: the job store cannot take the call right now."""
    return Problem(
        503,
        detail,
        kind=kind,
        title="Service unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _problem(_: Request, problem: Problem) -> Response:
    return problem.response()


async def _http_error(_: Request, error: HTTPException) -> Response:
    """Starlette's own errors (an unknown path, a method a path does not take) as problems."""
    detail = {404: "no such endpoint", 405: "this endpoint does not take that method"}
    text = detail.get(error.status_code, str(error.detail))
    return Problem(error.status_code, text, headers=error.headers).response()


async def _idempotency_conflict(_: Request, error: IdempotencyConflict) -> Response:
    detail = f"{error}; the Idempotency-Key header stands for one request body"
    return Problem(
        422, detail, kind="idempotency-conflict", title="Idempotency key reused"
    ).response()


async def _storage_error(_: Request, error: StorageError) -> Response:
    """503: what the client should do next; the Redis error itself goes to the log only."""
    log.warning("answering 503: %s", error)
    if isinstance(error, OutcomeUnknown):
        return unavailable(
            "the job store took the call but did not confirm it, so the message may have been "
            "queued: retry with the same Idempotency-Key (without one, a retry may send it twice)",
            kind="outcome-unknown",
        ).response()
    return unavailable(
        "the job store (Redis) is unreachable or full, so nothing was done: try again later"
    ).response()


async def _unexpected(_: Request, error: Exception) -> Response:
    log.error("answering 500", exc_info=error)
    return Problem(500, "the service failed unexpectedly; the error is in its log").response()


Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]
HANDLERS: dict[int | type[Exception], Handler] = {
    Problem: _problem,
    HTTPException: _http_error,
    IdempotencyConflict: _idempotency_conflict,
    StorageError: _storage_error,
    Exception: _unexpected,
}
"""Every error the app can meet, answered as a problem."""
