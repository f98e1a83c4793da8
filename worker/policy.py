"""What to do after a send: the retry policy as a pure function of the outcome."""

from __future__ import annotations

import random
from dataclasses import dataclass

from worker.backoff import retry_delay
from worker.jobs import Ending
from worker.outcomes import Outcome, OutcomeKind
from worker.settings import WorkerSettings


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for a job after one send, with the retry delay and the error to record."""

    verdict: Ending
    delay: float = 0.0
    error: str = ""


def decide(
    outcome: Outcome, attempt: int, settings: WorkerSettings, rng: random.Random
) -> Decision:
    """Sent, retry later (transient, throttled, ambiguous), or fail for good."""
    if outcome.kind is OutcomeKind.SENT:
        return Decision(Ending.SENT)
    if outcome.kind is OutcomeKind.AMBIGUOUS and settings.ambiguous == "fail":
        return Decision(Ending.FAILED, error=f"may have been sent: {outcome.reason}")
    if not outcome.kind.retryable:
        return Decision(Ending.FAILED, error=outcome.reason)
    if attempt >= settings.max_attempts:
        return Decision(Ending.FAILED, error=f"gave up after {attempt} attempts: {outcome.reason}")
    delay = retry_delay(
        outcome,
        attempt,
        base=settings.backoff_base,
        cap=settings.backoff_cap,
        rng=rng,
        max_retry_after=settings.max_retry_after,
    )
    return Decision(
        Ending.RETRY,
        delay=delay,
        # No time here: rate limits may hold the retry longer; `next_attempt_at` says when.
        error=f"{outcome.reason} (attempt {attempt} of {settings.max_attempts})",
    )
