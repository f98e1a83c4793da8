"""/v1/messages: queue messages (one or a batch), read their status, cancel them."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from producer.collector import collector_paused
from producer.errors import FieldProblem, ValidationError
from producer.jobs import IDEMPOTENCY_KEY_MAX
from producer.status import JobState, JobStatus
from producer.validation import shown
from zixflow_queue.service.auth import authenticated
from zixflow_queue.service.body import field_errors, parse, read_json
from zixflow_queue.service.models import (
    Accepted,
    BatchAccepted,
    BatchRequest,
    SubmitRequest,
    limited_batch,
)
from zixflow_queue.service.openapi import problem_responses, request_body
from zixflow_queue.service.problems import Problem, invalid
from zixflow_queue.service.settings import ServiceSettings
from zixflow_queue.service.state import enqueuer_of, producer_of

PREFIX = "/v1/messages"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REQUEST_PATHS = {
    "send_at": "sendAt",
    "callback_url": "callbackUrl",
    "idempotency_key": IDEMPOTENCY_HEADER,
}
"""The producer's names for a job's options, as a request names them."""
BATCHES_IN_HAND = 2
"""Batches validated and being stored at once; the others wait as the bytes they came in.

One is stored while the next is built, which keeps Redis and the service busy. Each in hand
is some 40,000 objects that the garbage collector would scan in vain: with all 16 of a load's
batches in hand, that took a quarter of the service's time."""
_ESCAPED = re.compile(r"\\(.)")

IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
    "description": "the same key with the same body answers as the first time and queues "
    "nothing new; with another body, 422. A key is kept as long as the job records "
    "(ZQ_RECORD_TTL). A bare value, or a structured-field string in double quotes.",
}
"""Read by the handlers themselves: a declared header parameter costs time on every request."""

JobId = Annotated[str, Path(alias="id", description="the id POST /v1/messages answered with")]

WRITE_ERRORS = problem_responses({
    400: "the body is not valid JSON",
    401: "no valid bearer token",
    413: "the body is larger than ZQ_MAX_BODY_BYTES, or a batch has more than "
    "ZQ_MAX_BATCH_ITEMS items",
    415: "the body is not JSON",
    422: "invalid fields (`errors` names each by its path), or an Idempotency-Key used "
    "with another body",
    503: "Redis is unreachable or full: retry after Retry-After seconds",
})  # fmt: skip
READ_ERRORS = problem_responses({
    401: "no valid bearer token",
    404: "no message has this id",
    503: "Redis is unreachable: retry after Retry-After seconds",
})  # fmt: skip


class Messages:
    """The endpoints that read a body, with the limits the service's settings give them."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.max_bytes = settings.max_body_bytes
        self.batch = limited_batch(settings.max_batch_items)
        self._batches_in_hand = asyncio.Semaphore(BATCHES_IN_HAND)

    async def submit(self, request: Request) -> Response:
        """Queue one message, or schedule it for `sendAt`."""
        raw = await read_json(request, self.max_bytes)
        (item,), (job_id,) = await self._queue(request, raw, SubmitRequest)
        answer = {"id": job_id, "state": _state_when_queued(item)}
        return _json(answer, 202, {"Location": f"{PREFIX}/{job_id}"})

    async def submit_batch(self, request: Request) -> Response:
        """Queue many messages together: all of them, or none when any item is invalid."""
        raw = await read_json(request, self.max_bytes)
        async with self._batches_in_hand:
            _, job_ids = await self._queue(request, raw, self.batch)
        return _json({"ids": job_ids}, 202)

    async def _queue(
        self, request: Request, raw: bytes, model: type[SubmitRequest | BatchRequest]
    ) -> tuple[list[SubmitRequest], list[str]]:
        """The request body's items, and their job ids once stored."""
        # A batch makes thousands of objects at once: the collector would only rescan them
        # (three to five times the work of parsing 1,000 messages).
        with collector_paused():
            body = parse(raw, model)
            items = body.items if isinstance(body, BatchRequest) else [body]
            jobs = [item.job() for item in items]
        batch = isinstance(body, BatchRequest)
        key = _idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
        try:
            job_ids = await enqueuer_of(request).enqueue(jobs, key)
        except ValidationError as error:  # a send time too far ahead, a bad Idempotency-Key
            raise invalid(field_errors(_as_requested(error.problems, batch=batch))) from None
        return items, job_ids


async def get_message(request: Request, job_id: JobId) -> Response:
    """The message's status."""
    status = await producer_of(request).get_status(job_id)
    if status is None:
        raise _unknown(job_id)
    return _json(status.as_dict())


async def cancel_message(request: Request, job_id: JobId) -> Response:
    """Cancel a message that has not started sending; its status, now `canceled`."""
    producer = producer_of(request)
    canceled = await producer.cancel(job_id)
    status = await producer.get_status(job_id)
    if status is None:
        raise _unknown(job_id)
    if not canceled:
        raise Problem(
            409,
            f"message {job_id} is {status.state}: only a queued, scheduled or retrying message "
            "can be canceled",
            kind="not-cancelable",
            title="Cannot be canceled",
        )
    return _json(status.as_dict())


def router(settings: ServiceSettings) -> APIRouter:
    """The /v1/messages endpoints, for callers with a token."""
    messages = Messages(settings)
    routes = APIRouter(prefix=PREFIX, tags=["messages"], dependencies=[Depends(authenticated)])
    location = {"Location": {"description": "/v1/messages/{id}", "schema": {"type": "string"}}}
    routes.add_api_route(
        "", messages.submit, methods=["POST"], status_code=202, response_model=None,
        summary="Queue a message",
        openapi_extra={
            "parameters": [IDEMPOTENCY_PARAMETER],
            **request_body(SubmitRequest, "a wire message, and when to send it"),
        },
        responses={202: {"model": Accepted, "headers": location}, **WRITE_ERRORS},
    )  # fmt: skip
    routes.add_api_route(
        "/batch", messages.submit_batch, methods=["POST"], status_code=202,
        response_model=None, summary="Queue many messages, all or none",
        openapi_extra={
            "parameters": [IDEMPOTENCY_PARAMETER],
            **request_body(messages.batch, "the items, each as POST /v1/messages takes"),
        },
        responses={202: {"model": BatchAccepted}, **WRITE_ERRORS},
    )  # fmt: skip
    routes.add_api_route(
        "/{id}", get_message, methods=["GET"], response_model=None,
        summary="A message's status", responses={200: {"model": JobStatus}, **READ_ERRORS},
    )  # fmt: skip
    conflict = problem_responses({409: "the message is sending or finished: too late"})
    routes.add_api_route(
        "/{id}", cancel_message, methods=["DELETE"], response_model=None,
        summary="Cancel a message that has not started sending",
        responses={200: {"model": JobStatus}, **READ_ERRORS, **conflict},
    )  # fmt: skip
    return routes


def _as_requested(problems: Iterable[FieldProblem], *, batch: bool) -> list[FieldProblem]:
    """Producer paths (`send_at`, `to`) as request paths (`sendAt`, `items.2.message.to`)."""
    named = []
    for problem in problems:
        path = REQUEST_PATHS.get(problem.path) or f"message.{problem.path}".rstrip(".")
        if batch and problem.path != "idempotency_key":
            # The producer numbers the items of a batch of two or more only.
            path = f"items.{problem.item or 0}.{path}"
        named.append(FieldProblem(path, problem.problem))
    return named


def _idempotency_key(header: str | None) -> str | None:
    """The key as sent: bare, or as the draft's structured-field string ("..." with escapes)."""
    if header and len(header) >= 2 and header[0] == header[-1] == '"':
        return _ESCAPED.sub(r"\1", header[1:-1])
    return header


def _state_when_queued(body: SubmitRequest) -> JobState:
    """Scheduled while its send time is still to come, else queued (due now).

    Checked after storing: a send time that passed meanwhile is reported as due, as it is.
    """
    if body.send_at is not None and body.send_at.timestamp() > time.time():
        return JobState.SCHEDULED
    return JobState.QUEUED


def _unknown(job_id: str) -> Problem:
    return Problem(404, f"no message has the id {shown(job_id)}")


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = json.dumps(data, ensure_ascii=False).encode()
    return Response(content, status, headers, media_type="application/json")
