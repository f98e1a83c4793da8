"""Request and response bodies, built on the models the producer validates with.

`ReplyButtonMessage` sits inside the request models, so a request is checked by the very rules
`producer.enqueue` applies, and the OpenAPI document shows the wire message with its limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from producer.jobs import Job
from producer.message import ReplyButtonMessage
from producer.status import JobState
from producer.validation import HttpUrl, shown


def _iso_8601(value: object) -> datetime:
    """An ISO 8601 date and time with its offset; the producer checks when it falls."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 8601 date and time string, got {shown(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"must be an ISO 8601 date and time such as 2026-05-01T09:30:00+05:30, "
            f"got {shown(value)}"
        ) from None
    if moment.utcoffset() is None:
        raise ValueError(
            f"must include a timezone (Z or an offset like +05:30), got {shown(value)}"
        )
    return moment


SendAt = Annotated[datetime, BeforeValidator(_iso_8601)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmitRequest(_Body):
    """One message to queue: the wire message, and optionally when to send it and whom to tell."""

    message: ReplyButtonMessage
    send_at: SendAt | None = Field(
        None,
        alias="sendAt",
        description="send no sooner than this (ISO 8601 with a timezone); a time past means "
        "now; at most ZQ_RECORD_TTL ahead",
    )
    callback_url: HttpUrl | None = Field(
        None,
        alias="callbackUrl",
        description="receives signed status events for this message (http or https)",
    )

    def job(self) -> Job:
        """The producer's job for this request."""
        return Job(self.message, send_at=self.send_at, callback_url=self.callback_url)


class BatchRequest(_Body):
    """Messages to queue together: all of them, or none if any is invalid."""

    items: list[SubmitRequest] = Field(min_length=1)


def limited_batch(max_items: int) -> type[BatchRequest]:
    """`BatchRequest` taking at most `max_items` items, a limit the OpenAPI document shows."""
    return create_model(
        "BatchRequest",
        __base__=BatchRequest,
        __doc__=BatchRequest.__doc__,
        items=(list[SubmitRequest], Field(min_length=1, max_length=max_items)),
    )


class Accepted(BaseModel):
    """A queued message: its id (also in the Location header) and its state when it was queued."""

    id: str
    state: JobState


class BatchAccepted(BaseModel):
    """The ids of a batch's messages, in the order of its items."""

    ids: list[str]


class FieldError(BaseModel):
    """One invalid field, by its dotted path in the request (`items.3.message.to`)."""

    path: str
    message: str


class ProblemDetails(BaseModel):
    """An error answer (RFC 9457): `errors` lists invalid fields for validation problems."""

    type: str = Field(description="a URN naming the kind of problem")
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
