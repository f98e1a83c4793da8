"""POST /v1/zixflow/events: Zixflow's incoming-message webhook, each event kept and then matched.

Zixflow's webhook can send custom headers but no `Authorization: Bearer`, so this one endpoint
is authenticated by `X-Zixflow-Token` (ZQ_ZIXFLOW_WEBHOOK_TOKEN) instead of the API's tokens,
and by nothing else: an API token here is a 401. Apps hold the API tokens; Zixflow holds this
one, which can report replies but never queue a message.

Zixflow retries a failing webhook and then disables it, so an authenticated event is never
refused for what it says: matched, unmatched, of an unknown shape or seen before, it is
answered 200 once one Redis call has kept it (and, for a button reply, put it on its job).
Only a body that is not JSON (400), one too large (413) or Redis being away (503) fails.
"""

from __future__ import annotations

import json
import logging
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from producer.errors import StorageError
from producer.settings import environment_variable
from producer.store import storage_boundary
from zixflow_queue.replies import InboundRecorder, read_event
from zixflow_queue.service.auth import Tokens
from zixflow_queue.service.body import read_limited
from zixflow_queue.service.openapi import problem_responses, request_body
from zixflow_queue.service.problems import Problem, unavailable
from zixflow_queue.service.settings import ServiceSettings
from zixflow_queue.service.state import producer_of

log = logging.getLogger(__name__)

PATH = "/v1/zixflow/events"
TOKEN_HEADER = "X-Zixflow-Token"
TOKEN_VARIABLE = environment_variable(ServiceSettings, "zixflow_webhook_token")


class Sender(BaseModel):
    """Who wrote: the recipient of an earlier message."""

    name: str | None = None
    number: str


class ZixflowEvent(BaseModel):
    """An `incoming.whatsapp.message` event as Zixflow posts it (other shapes are kept too)."""

    model_config = ConfigDict(extra="allow")

    event: str = Field(examples=["incoming.whatsapp.message"])
    event_id: str = Field(alias="eventId", description="UUID; an event seen before counts once")
    timestamp: int = Field(description="milliseconds since the epoch")
    phone_id: str = Field(alias="phoneId", description="the business number's id in Zixflow")
    waba_id: str | None = Field(None, alias="wabaId")
    message_id: str | None = Field(None, alias="messageId", description="WhatsApp's wamid")
    sender: Sender
    message: dict[str, object] | None = Field(
        None,
        description='a button reply is {"type": "interactive", "interactive": {"type": '
        '"button_reply", "button_reply": {"id", "title"}}}; absent in "Event Only" mode',
    )


class EventOutcome(BaseModel):
    """What became of the event."""

    outcome: Literal["matched", "unmatched", "other", "unknown", "duplicate"] = Field(
        description="matched: a button reply put on its job; unmatched: a button no job sent "
        "offers; other: not a button reply; unknown: an envelope that could not be read; "
        "duplicate: an eventId seen before (nothing more done)"
    )


class WebhookToken(APIKeyHeader):
    """A dependency that refuses (401) a request without the webhook token, in constant time.

    As an APIKeyHeader, it puts the header into the OpenAPI document.
    """

    def __init__(self, token: SecretStr | None) -> None:
        super().__init__(
            name=TOKEN_HEADER, scheme_name="zixflowToken", auto_error=False,
            description=f"Zixflow's webhook: a custom header {TOKEN_HEADER} equal to "
            f"{TOKEN_VARIABLE}.",
        )  # fmt: skip
        self._tokens = Tokens([token] if token and token.get_secret_value() else [])

    async def __call__(self, request: HTTPConnection) -> None:
        """Pass a request whose X-Zixflow-Token is the webhook token (none: nothing passes)."""
        if not self._tokens.accept(request.headers.get(TOKEN_HEADER, "")):
            raise Problem(401, f"send the webhook token of {TOKEN_VARIABLE} as {TOKEN_HEADER}")


class ZixflowEvents:
    """Keeps each event Zixflow posts, with the recorder of the app's Redis client."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self._recorder: tuple[Redis, InboundRecorder] | None = None

    async def receive(self, request: Request) -> JSONResponse:
        """Keep the event and put a button reply on its job; 200 with what became of it."""
        text, event = _json_body(await read_limited(request, self._settings.max_body_bytes))
        try:
            with storage_boundary("keep the Zixflow event"):
                outcome = await self._recorder_for(request).record(text, read_event(event))
        except StorageError as error:
            log.warning("answering 503 to Zixflow: %s", error)
            raise unavailable(
                "the event could not be kept (Redis is unreachable or full): Zixflow sends it "
                "again later, and an event kept already counts once"
            ) from None
        return JSONResponse({"outcome": outcome})

    def _recorder_for(self, request: Request) -> InboundRecorder:
        """The recorder of the Redis client the app's lifespan opened (one per app start)."""
        client = producer_of(request).store.records
        if self._recorder is None or self._recorder[0] is not client:
            self._recorder = (client, InboundRecorder(client, self._settings))
        return self._recorder[1]


def _json_body(raw: bytes) -> tuple[str, object]:
    """The body as text and as parsed JSON, whatever Content-Type says (Zixflow's is
    undocumented); 400 for a body that is not JSON."""
    try:
        text = raw.decode()
        return text, json.loads(text)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise Problem(
            400, f"the body is not valid JSON: {error}", kind="malformed-json",
            title="Malformed JSON",
        ) from None  # fmt: skip


def router(settings: ServiceSettings) -> APIRouter:
    """POST /v1/zixflow/events, for Zixflow's webhook (X-Zixflow-Token, not bearer tokens)."""
    token = settings.zixflow_webhook_token
    if not (token and token.get_secret_value()):
        log.warning("%s is not set: POST %s refuses every event (401)", TOKEN_VARIABLE, PATH)
    events = ZixflowEvents(settings)
    routes = APIRouter(tags=["zixflow"], dependencies=[Depends(WebhookToken(token))])
    routes.add_api_route(
        PATH, events.receive, methods=["POST"], response_model=None,
        summary="Take an event from Zixflow's webhook (a button reply, or anything else)",
        openapi_extra=request_body(ZixflowEvent, "the event, as Zixflow posts it; any JSON "
                                   "body is kept, whatever its Content-Type"),
        responses={
            200: {"model": EventOutcome, "description": "the event is kept: what became of it"},
            **problem_responses({
                400: "the body is not JSON",
                401: f"no {TOKEN_HEADER}, or not the one of {TOKEN_VARIABLE}",
                413: "the body is larger than ZQ_MAX_BODY_BYTES",
                503: "Redis is unreachable or full: Zixflow retries the event",
            }),
        },
    )  # fmt: skip
    return routes
