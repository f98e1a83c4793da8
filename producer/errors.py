"""The producer's exceptions, grouped by what the caller does next.

ProducerError
├── ValidationError      bad input: fix it; nothing was enqueued        (a ValueError)
├── IdempotencyConflict  a key reused for another message               (a ValueError)
├── ConfigurationError   a setting is wrong: the message names its variable
└── StorageError         Redis did not complete the call                (a ConnectionError)
    ├── RedisUnavailable refused, nothing stored: safe to try again
    └── OutcomeUnknown   it may have been stored: retry with the same idempotency key
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


class ProducerError(Exception):
    """Base of every error the producer raises."""


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field, named by its dotted path in the wire shape."""

    path: str
    problem: str
    item: int | None = None

    def __str__(self) -> str:
        where = self.path or "(message)"
        prefix = f"item {self.item}: " if self.item is not None else ""
        return f"{prefix}{where}: {self.problem}"


class ValidationError(ProducerError, ValueError):
    """A message breaks the Zixflow reply-button contract; nothing was enqueued."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid message, {count} {noun}:\n{lines}")

    @classmethod
    def for_batch(cls, errors: Mapping[int, ValidationError]) -> ValidationError:
        """Merge per-item errors into one that names each bad item's index."""
        return cls(
            FieldProblem(problem.path, problem.problem, item=index)
            for index, error in sorted(errors.items())
            for problem in error.problems
        )


class IdempotencyConflict(ProducerError, ValueError):
    """An idempotency key was reused with a different message."""


class ConfigurationError(ProducerError):
    """A setting cannot work; the message names its environment variable."""


class StorageError(ProducerError, ConnectionError):
    """Redis did not complete the call.

    `enqueued` holds the ids of jobs that were stored before it failed (an `enqueue_many`
    writes large batches in several transactions): they will be sent.
    """

    def __init__(self, message: str, *, enqueued: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.enqueued: tuple[str, ...] = tuple(enqueued)


class RedisUnavailable(StorageError):
    """Redis refused the call or could not be reached: nothing was stored, safe to try again."""


class OutcomeUnknown(StorageError):
    """The call reached Redis but no answer came back: the write may have been stored.

    Retry with the same idempotency key: a stored job is then returned, not queued twice.
    """
