"""The exception tree, and the outcome each failure kind raises as."""

from __future__ import annotations

import pickle

import pytest

from worker.errors import (
    AmbiguousError,
    ConfigurationError,
    CredentialsError,
    PermanentError,
    RateLimited,
    TransientError,
    ZixflowError,
    error_for,
)
from worker.outcomes import Outcome, OutcomeKind

K = OutcomeKind


@pytest.mark.parametrize(
    ("kind", "error_type", "family"),
    [
        (K.TRANSIENT, TransientError, TransientError),
        (K.THROTTLED, RateLimited, TransientError),
        (K.AMBIGUOUS, AmbiguousError, AmbiguousError),
        (K.PERMANENT, PermanentError, PermanentError),
        (K.CREDENTIALS, CredentialsError, PermanentError),
    ],
)
def test_error_for_each_failure_kind(
    kind: OutcomeKind, error_type: type[ZixflowError], family: type[ZixflowError]
) -> None:
    outcome = Outcome(kind, "HTTP 400: Invalid data Provided", 400)

    error = error_for(outcome)

    assert type(error) is error_type
    assert isinstance(error, family)
    assert str(error) == "HTTP 400: Invalid data Provided"
    assert error.outcome is outcome


def test_rate_limited_carries_the_wait_asked_for() -> None:
    error = error_for(Outcome(K.THROTTLED, "HTTP 429: slow down", 429, retry_after=4.5))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 4.5


def test_sent_is_not_an_error() -> None:
    with pytest.raises(ValueError, match="not an error"):
        error_for(Outcome(K.SENT, "Message sent successfully", 200))


def test_configuration_error_is_apart_from_send_failures() -> None:
    error = ConfigurationError("ZIXFLOW_API_KEY is not set")
    assert isinstance(error, ZixflowError)
    assert not isinstance(error, TransientError | PermanentError | AmbiguousError)
    assert error.outcome is None


def test_errors_survive_pickling() -> None:
    error = pickle.loads(pickle.dumps(RateLimited("HTTP 429: slow down", retry_after=2.0)))
    assert (type(error), str(error)) == (RateLimited, "HTTP 429: slow down")
