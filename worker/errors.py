"""The worker's exceptions, grouped by what happens next.

    ZixflowError
    ├── TransientError        try again later, with backoff
    │   └── RateLimited       try again no sooner than `retry_after`
    ├── AmbiguousError        the message may have gone out; the policy decides
    └── PermanentError        give up: the job fails with Zixflow's reason
        └── CredentialsError  give up, and an operator must fix the key
    ConfigurationError        the worker cannot start as configured
"""

from __future__ import annotations

from worker.outcomes import Outcome, OutcomeKind


class ZixflowError(Exception):
    """A send that did not succeed."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.reason)


class TransientError(ZixflowError):
    """A failure that may pass: retry with backoff."""


class RateLimited(TransientError):
    """Zixflow or WhatsApp asked to slow down."""

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait, if it said."""
        return self.outcome.retry_after


class AmbiguousError(ZixflowError):
    """No answer after the request went out: it may have been sent."""


class PermanentError(ZixflowError):
    """A failure retrying cannot change."""


class CredentialsError(PermanentError):
    """The API key was refused."""


class ConfigurationError(RuntimeError):
    """The worker is configured in a way it cannot run with."""


_ERRORS: dict[OutcomeKind, type[ZixflowError]] = {
    OutcomeKind.TRANSIENT: TransientError,
    OutcomeKind.THROTTLED: RateLimited,
    OutcomeKind.AMBIGUOUS: AmbiguousError,
    OutcomeKind.PERMANENT: PermanentError,
    OutcomeKind.CREDENTIALS: CredentialsError,
}


def error_for(outcome: Outcome) -> ZixflowError:
    """The exception for a failed outcome, for callers who prefer raising."""
    if outcome.kind is OutcomeKind.SENT:
        raise ValueError("a sent outcome is not an error")
    return _ERRORS[outcome.kind](outcome)
