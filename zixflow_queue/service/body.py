"""A JSON request body: read once within a size limit, then parsed and validated in one pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from producer.errors import FieldProblem
from producer.validation import problems_from
from zixflow_queue.service.problems import Problem, invalid

M = TypeVar("M", bound=BaseModel)
MAX_LISTED = 10_000
"""The most invalid fields a 422 lists: every one of a 1,000-item batch, but not a flood."""


async def read_json(request: Request, max_bytes: int) -> bytes:
    """The raw body: 415 unless the request says it is JSON, 413 once it grows past `max_bytes`."""
    _check_media_type(request.headers.get("content-type", ""))
    return await read_limited(request, max_bytes)


def parse(raw: bytes, model: type[M]) -> M:
    """The body parsed and validated in one pass: 400 unless it is JSON, 422 naming each
    invalid field, 413 for a batch of too many items."""
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as error:
        raise _refused(error, model) from None


def field_errors(problems: Iterable[FieldProblem]) -> list[dict[str, str]]:
    """The `errors` of a validation problem, in the producer's own words."""
    return [{"path": problem.path, "message": problem.problem} for problem in problems]


def _check_media_type(content_type: str) -> None:
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    shown = f"got {media_type!r}" if media_type else "no Content-Type was sent"
    raise Problem(
        415, f"the body must be JSON (Content-Type: application/json); {shown}",
        headers={"Accept-Post": "application/json"},
    )  # fmt: skip


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The body, refused as soon as it grows past the limit (Content-Length may be absent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> Problem:
    return Problem(
        413,
        f"the body is larger than {max_bytes:,} bytes (ZQ_MAX_BODY_BYTES); "
        "send fewer messages per request",
        kind="body-too-large",  # not the status's name: Python 3.13 renamed it
        title="Body too large",
    )


def _refused(error: PydanticValidationError, model: type[BaseModel]) -> Problem:
    """The answer to a body that failed: malformed JSON, too many items, or invalid fields."""
    count = error.error_count()
    if count > MAX_LISTED:  # describing each would take a minute for a 5 MB body of `{},`
        message = f"{count:,} problems, too many to list: is it in the documented shape?"
        return invalid([{"path": "", "message": message}], f"the body has {message}")
    for detail in error.errors(include_url=False, include_input=False):
        if detail["type"] == "json_invalid":
            reason = (detail.get("ctx") or {}).get("error", "")
            text = f"the body is not valid JSON: {reason}"
            return Problem(400, text, kind="malformed-json", title="Malformed JSON")
        if detail["type"] == "too_long" and detail["loc"] == ("items",):
            context = detail.get("ctx") or {}
            got = context.get("actual_length")
            return Problem(
                413,
                f"a batch takes at most {context['max_length']:,} items (ZQ_MAX_BATCH_ITEMS)"
                + (f", got {got:,}" if got else "")
                + ": split it",
                kind="too-many-items",
                title="Too many items",
            )
    return invalid(field_errors(problems_from(error, model)))
