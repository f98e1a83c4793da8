"""The sandbox as the recipient: when to tap a button, and the event Zixflow's webhook posts."""

from __future__ import annotations

import base64
import math
import random
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from producer.message import ReplyButtonMessage

EVENT = "incoming.whatsapp.message"
WABA_ID = "102290129340398"
"""The sandbox's WhatsApp Business Account id: one, as for a business with one account."""
NAMES = ("Asha", "Rahul", "Priya", "Vikram", "Meera", "Arjun", "Kavya", "Rohan")
"""Senders' profile names, as WhatsApp passes them on."""


@dataclass(frozen=True)
class ReplyPlan:
    """Where the recipients' replies go, with which token, for what share of accepted messages,
    and how long after the message (seconds, drawn evenly between the two)."""

    url: str | None = None
    token: str | None = field(default=None, repr=False)
    rate: float = 0.5
    delay: tuple[float, float] = (0.5, 3.0)
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.url is not None and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"url must be an http:// or https:// URL, not {self.url!r}")
        if self.token is not None and not isinstance(self.token, str):
            raise ValueError("token must be a string or null")
        if not _number(self.rate) or not 0 <= self.rate <= 1:
            raise ValueError(f"rate must be a number from 0 to 1, not {self.rate!r}")
        low, high = _pair(self.delay)
        if not 0 <= low <= high < math.inf:
            raise ValueError(f"delay must be two finite seconds, 0 <= min <= max, not {low}-{high}")
        object.__setattr__(self, "delay", (low, high))
        if not isinstance(self.seed, int | None):
            raise ValueError(f"seed must be an integer or null, not {self.seed!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplyPlan:
        """A plan from its JSON form (`delay` as [min, max])."""
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The plan's JSON form, token included (for the control API)."""
        return asdict(self)

    def shown(self) -> dict[str, Any]:
        """The plan's JSON form without the token: what the sandbox tells anyone who asks."""
        return {**self.to_dict(), "token": "(set)" if self.token else None}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pair(value: object) -> tuple[float, float]:
    """Two numbers from a list or tuple; a ValueError for anything else."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(map(_number, value)):
        return float(value[0]), float(value[1])
    raise ValueError(f"delay must be [min, max] in seconds, not {value!r}")


def parse_delay(text: str) -> tuple[float, float]:
    """`MIN-MAX` seconds (`0.5-3`), or one number for a fixed delay."""
    low, _, high = text.partition("-")
    try:
        return float(low), float(high or low)
    except ValueError:
        raise ValueError(
            f"must be MIN-MAX seconds (e.g. 0.5-3) or one number, not {text!r}"
        ) from None


def reply_event(
    message: ReplyButtonMessage, rng: random.Random, tapped_at: float
) -> dict[str, Any]:
    """The event of the recipient tapping a random button of `message` at `tapped_at` (epoch s).

    Zixflow's envelope around WhatsApp's interactive `button_reply`; a fresh random eventId
    (never from `rng`: a seeded sandbox restarted must not repeat ids).
    """
    button = rng.choice(message.interactive.action.buttons).reply
    wamid = base64.b64encode(b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(18)).decode()
    return {
        "event": EVENT,
        "eventId": str(uuid.uuid4()),
        "timestamp": round(tapped_at * 1000),
        "phoneId": message.phone_id,
        "wabaId": WABA_ID,
        "messageId": f"wamid.{wamid}",
        "sender": {"name": rng.choice(NAMES), "number": message.to},
        "message": {
            "type": "interactive",
            "interactive": {
                "type": "button_reply",
                "button_reply": {"id": button.id, "title": button.title},
            },
        },
    }
