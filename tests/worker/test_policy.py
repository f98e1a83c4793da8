"""The retry policy: what each outcome leads to, attempt by attempt."""

from __future__ import annotations

import random
from typing import Literal

import pytest

from worker.jobs import Ending as Verdict
from worker.outcomes import Outcome, OutcomeKind
from worker.policy import Decision, decide
from worker.settings import WorkerSettings

K = OutcomeKind
MAX_ATTEMPTS = 5
BASE, CAP = 0.5, 6.0


def settings(ambiguous: Literal["retry", "fail"] = "retry") -> WorkerSettings:
    return WorkerSettings(
        max_attempts=MAX_ATTEMPTS, backoff_base=BASE, backoff_cap=CAP, ambiguous=ambiguous
    )


RETRY, FAIL = settings("retry"), settings("fail")


def outcome(kind: OutcomeKind, retry_after: float | None = None) -> Outcome:
    reasons = {
        K.SENT: "Message sent successfully",
        K.TRANSIENT: "HTTP 500: (#2) Service temporarily unavailable",
        K.THROTTLED: "HTTP 429: (#130429) Rate limit hit",
        K.PERMANENT: "HTTP 400: (#131047) Re-engagement message",
        K.CREDENTIALS: "HTTP 401: Unauthorised",
        K.AMBIGUOUS: "no complete answer, the message may have been sent: ReadTimeout",
    }
    return Outcome(kind, reasons[kind], retry_after=retry_after)


def test_sent_is_sent_whatever_the_attempt() -> None:
    for attempt in (1, MAX_ATTEMPTS, MAX_ATTEMPTS + 3):
        assert decide(outcome(K.SENT), attempt, RETRY, random.Random(0)) == Decision(Verdict.SENT)


@pytest.mark.parametrize("kind", [K.PERMANENT, K.CREDENTIALS])
@pytest.mark.parametrize("attempt", [1, 2, MAX_ATTEMPTS])
def test_permanent_and_credentials_fail_at_once_with_the_reason(
    kind: OutcomeKind, attempt: int
) -> None:
    decision = decide(outcome(kind), attempt, RETRY, random.Random(0))
    assert decision == Decision(Verdict.FAILED, delay=0.0, error=outcome(kind).reason)


@pytest.mark.parametrize("kind", [K.TRANSIENT, K.THROTTLED, K.AMBIGUOUS])
@pytest.mark.parametrize("attempt", range(1, MAX_ATTEMPTS))
def test_retryable_outcomes_retry_within_the_backoff_bounds(
    kind: OutcomeKind, attempt: int
) -> None:
    rng = random.Random(attempt)
    ceiling = min(CAP, BASE * 2 ** (attempt - 1))

    decisions = [decide(outcome(kind), attempt, RETRY, rng) for _ in range(200)]

    assert {decision.verdict for decision in decisions} == {Verdict.RETRY}
    delays = [decision.delay for decision in decisions]
    assert all(0.0 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) == len(delays)  # jittered, not constant
    first = decisions[0]
    assert first.error == (f"{outcome(kind).reason} (attempt {attempt} of {MAX_ATTEMPTS})")


def test_the_same_seed_gives_the_same_delays() -> None:
    def delays(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [decide(outcome(K.TRANSIENT), n, RETRY, rng).delay for n in range(1, 5)]

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)


@pytest.mark.parametrize("kind", [K.TRANSIENT, K.THROTTLED, K.AMBIGUOUS])
@pytest.mark.parametrize("attempt", [MAX_ATTEMPTS, MAX_ATTEMPTS + 1])
def test_exhausted_attempts_give_up(kind: OutcomeKind, attempt: int) -> None:
    decision = decide(outcome(kind), attempt, RETRY, random.Random(0))
    assert decision == Decision(
        Verdict.FAILED, error=f"gave up after {attempt} attempts: {outcome(kind).reason}"
    )


@pytest.mark.parametrize("attempt", [1, MAX_ATTEMPTS - 1, MAX_ATTEMPTS])
def test_ambiguous_fails_at_once_when_the_policy_says_fail(attempt: int) -> None:
    decision = decide(outcome(K.AMBIGUOUS), attempt, FAIL, random.Random(0))
    assert decision == Decision(
        Verdict.FAILED, error=f"may have been sent: {outcome(K.AMBIGUOUS).reason}"
    )


@pytest.mark.parametrize("kind", [K.TRANSIENT, K.THROTTLED])
def test_the_ambiguity_policy_leaves_other_retries_alone(kind: OutcomeKind) -> None:
    decision = decide(outcome(kind), 1, FAIL, random.Random(0))
    assert decision.verdict is Verdict.RETRY


@pytest.mark.parametrize("attempt", range(1, MAX_ATTEMPTS))
@pytest.mark.parametrize("retry_after", [0.2, 2.0, 30.0, 600.0])
def test_throttled_waits_at_least_retry_after(attempt: int, retry_after: float) -> None:
    rng = random.Random(attempt)
    throttled = outcome(K.THROTTLED, retry_after=retry_after)

    delays = [decide(throttled, attempt, RETRY, rng).delay for _ in range(100)]

    assert min(delays) >= retry_after
    assert max(delays) <= max(retry_after, min(CAP, BASE * 2 ** (attempt - 1)))


def test_retry_after_beyond_the_cap_wins() -> None:
    decision = decide(outcome(K.THROTTLED, retry_after=45.0), 1, RETRY, random.Random(3))
    assert (decision.verdict, decision.delay) == (Verdict.RETRY, 45.0)
    assert decision.error.endswith(f"(attempt 1 of {MAX_ATTEMPTS})")


def test_a_single_attempt_means_no_retry() -> None:
    only_one = WorkerSettings(max_attempts=1, backoff_base=BASE, backoff_cap=CAP, ambiguous="retry")
    decision = decide(outcome(K.TRANSIENT), 1, only_one, random.Random(0))
    assert decision.verdict is Verdict.FAILED
    assert decision.error.startswith("gave up after 1 attempts: HTTP 500")


def test_a_far_off_retry_after_is_taken_as_zq_max_retry_after() -> None:
    patient = WorkerSettings(max_attempts=MAX_ATTEMPTS, max_retry_after=120.0)
    decision = decide(outcome(K.THROTTLED, retry_after=3 * 86_400.0), 1, patient, random.Random(3))
    assert (decision.verdict, decision.delay) == (Verdict.RETRY, 120.0)
