"""Reading Zixflow's `incoming.whatsapp.message` events: the one place that knows their shapes.

Zixflow documents the envelope (`event`, `eventId`, `timestamp` in ms, `phoneId`, `sender`,
`message`) but not every inner shape, so WhatsApp's own shapes are read: an interactive
`button_reply` (`{id, title}`), and a template quick reply (`button`: `{payload, text}`).
Anything else is still an event, of kind `other` (a text, an image...) or `unknown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from producer.validation import normalised_phone

BUTTON = "button"
"""A tap on a button: what a reply is matched by."""
OTHER = "other"
"""A message of a known envelope that is not a button tap."""
UNKNOWN = "unknown"
"""An event whose envelope cannot be read (no eventId, no sender...)."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One event from Zixflow, as much as could be read of it."""

    event_id: str
    kind: str
    phone_id: str = ""
    sender: str = ""
    """The sender's number, normalised as the producer stores `to`."""
    button_id: str = ""
    title: str = ""
    at: datetime | None = None


def read_event(event: object) -> Inbound:
    """What an event says; never raises (an unreadable event is kept as `unknown`)."""
    if not isinstance(event, Mapping):
        return Inbound("", UNKNOWN)
    event_id = _text(event.get("eventId"))
    sender = event.get("sender")
    number = normalised_phone(_text(sender.get("number"))) if isinstance(sender, Mapping) else None
    phone_id = _text(event.get("phoneId"))
    if not (event_id and number and phone_id):
        return Inbound(event_id, UNKNOWN)
    at = _moment(event.get("timestamp"))
    button = _button(event.get("message"))
    if button is None:
        return Inbound(event_id, OTHER, phone_id, number, at=at)
    return Inbound(event_id, BUTTON, phone_id, number, button[0], button[1], at)


def _button(message: object) -> tuple[str, str] | None:
    """(id, title) of a button tap, in either of WhatsApp's shapes; None for anything else."""
    if not isinstance(message, Mapping):
        return None
    interactive = message.get("interactive")
    if isinstance(interactive, Mapping) and isinstance(interactive.get("button_reply"), Mapping):
        reply = interactive["button_reply"]
        return _pair(reply.get("id"), reply.get("title"))
    button = message.get("button")
    if isinstance(button, Mapping):
        return _pair(button.get("payload"), button.get("text"))
    return None


def _pair(button_id: Any, title: Any) -> tuple[str, str] | None:
    return (button_id, _text(title)) if isinstance(button_id, str) and button_id else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _moment(timestamp: object) -> datetime | None:
    """Zixflow's 13-digit milliseconds (or seconds), as an aware time."""
    if isinstance(timestamp, str) and timestamp.isdigit():
        timestamp = int(timestamp)
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool) or timestamp <= 0:
        return None
    seconds = timestamp / 1000 if timestamp > 10**11 else timestamp
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
