"""Keeping what the queue cannot deliver: items and messages no job can come of."""

from __future__ import annotations

import logging

from producer.deadletters import DeadLetter
from worker.runtime import runtime

log = logging.getLogger(__name__)


def dead_letter(reason: str, raw: str | bytes | None) -> None:
    """Store `raw` in the dead-letter store with `reason`; never raises.

    The caller drops or acks the message whatever happens here, so failing to keep a copy
    is logged, not allowed to stop the worker.
    """
    log.warning("dead-lettering a message: %s", reason)
    try:
        runtime().dead_letters.add(DeadLetter.for_poison(reason, raw))
    except Exception:
        log.exception("could not dead-letter a message: %s", reason)
