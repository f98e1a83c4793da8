"""The worker's exceptions, grouped by what happens next.

ZixflowError              anything the worker raises about Zixflow
├── TransientError        try again later, with backoff
│   └── RateLimited       try again no sooner than `retry_after`
├── AmbiguousError        the message may have gone out; the ambiguity policy decides
├── PermanentError        give up: the job fails with Zixflow's reason
│   └── CredentialsError  give up, and an operator must fix the key
└── ConfigurationError    the worker cannot send as configured (no job is touched)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from worker.outcomes import Outcome, OutcomeKind


class ZixflowError(Exception):
    """Base of the worker's errors; `outcome` is the send that caused it, if one did."""

    def __init__(self, message: str, outcome: Outcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class TransientError(ZixflowError):
    """A failure that may pass: retry with backoff."""


class RateLimited(TransientError):
    """Zixflow or WhatsApp asked to slow down; `retry_after` is the wait asked for, if any."""

    def __init__(
        self, message: str, outcome: Outcome | None = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message, outcome)
        self.retry_after = retry_after


class AmbiguousError(ZixflowError):
    """No complete answer after the request went out: it may have been sent."""


class PermanentError(ZixflowError):
    """A failure retrying cannot change."""


class CredentialsError(PermanentError):
    """The API key was refused."""


class ConfigurationError(ZixflowError):
    """The worker is configured in a way it cannot send with (e.g. no API key)."""


_ERRORS: Mapping[OutcomeKind, type[ZixflowError]] = MappingProxyType({
    OutcomeKind.TRANSIENT: TransientError,
    OutcomeKind.AMBIGUOUS: AmbiguousError,
    OutcomeKind.PERMANENT: PermanentError,
    OutcomeKind.CREDENTIALS: CredentialsError,
})  # fmt: skip


def error_for(outcome: Outcome) -> ZixflowError:
    """The exception for a failed outcome, for callers who prefer raising."""
    if outcome.kind is OutcomeKind.SENT:
        raise ValueError("a sent outcome is not an error")
    if outcome.kind is OutcomeKind.THROTTLED:
        return RateLimited(outcome.reason, outcome, retry_after=outcome.retry_after)
    return _ERRORS[outcome.kind](outcome.reason, outcome)
