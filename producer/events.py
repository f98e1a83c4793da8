"""Verifying a status event in the app that receives it (Standard Webhooks signatures)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from producer.errors import ProducerError


class InvalidEvent(ProducerError, ValueError):
    """A status event whose signature, headers or timestamp do not check out."""


def verify_event(body: bytes | str, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """Check a status event against its `webhook-*` headers and the shared `whsec_` secret.

    Returns the event (`{"type", "timestamp", "data"}`); raises InvalidEvent for a forged or
    altered one, or one signed more than five minutes off now (a replay). Pass the body
    exactly as received, before any JSON parsing.
    """
    from standardwebhooks import Webhook  # noqa: PLC0415 - only receivers need it
    from standardwebhooks.webhooks import WebhookVerificationError  # noqa: PLC0415

    text = body.decode() if isinstance(body, bytes) else body
    try:
        Webhook(secret).verify(text, dict(headers), json_parse=False)
    except WebhookVerificationError as error:
        raise InvalidEvent(f"not a genuine status event: {error}") from None
    event: dict[str, Any] = json.loads(text)
    return event
