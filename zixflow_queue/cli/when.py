"""`--at WHEN`: when a scheduled job is due, as an ISO 8601 time with a timezone or `+N` units."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

RELATIVE = re.compile(r"\+([0-9]{1,12})([smhd])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FORMS = (
    "an ISO 8601 time with a timezone (2026-12-24T09:00:00+05:30, or ...Z for UTC) "
    "or a delay from now (+90s, +15m, +2h, +1d)"
)


def parse_when(text: str) -> datetime:
    """The aware time `text` names; an ArgumentTypeError says which forms are understood."""
    relative = RELATIVE.fullmatch(text)
    if relative:
        amount, unit = relative.groups()
        try:
            return datetime.now(UTC) + timedelta(seconds=int(amount) * SECONDS[unit])
        except OverflowError:
            raise argparse.ArgumentTypeError(f"{text!r} is too far ahead") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {FORMS}, got {text!r}") from None
    if moment.utcoffset() is None:
        example = moment.isoformat()
        raise argparse.ArgumentTypeError(
            f"{text!r} has no timezone: add one, e.g. {example}+05:30, or {example}Z for UTC"
        )
    return moment
