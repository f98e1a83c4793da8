"""The producer's exceptions: what a caller catches when a job is refused."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


class RedisUnavailable(ProducerError, ConnectionError):
    """Redis did not answer, so the job was not enqueued (safe to try again)."""
