"""The dead-letter store: jobs that failed for good and messages no worker could read."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from producer import keys
from producer.envelope import EnvelopeBuilder
from producer.settings import DEFAULT_BATCH_SIZE
from producer.store import Store

RAW_LIMIT = 4096


@dataclass(frozen=True)
class DeadLetter:
    """One entry: why it failed, what Zixflow last said, and the job it belongs to (if any)."""

    id: str
    reason: str
    at: float = field(default_factory=time.time)
    job_id: str | None = None
    attempts: int = 0
    status_code: int | None = None
    last_response: dict[str, Any] | None = None
    raw: str | None = None
    """The undecodable message as received (truncated), for entries without a job."""

    @classmethod
    def for_poison(cls, reason: str, raw: str | bytes | None) -> DeadLetter:
        """An entry for a queue message that names no usable job."""
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        return cls(id=f"poison-{uuid.uuid4().hex}", reason=reason, raw=(text or "")[:RAW_LIMIT])

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


class DeadLetters:
    """Lists, shows, replays and purges dead letters."""

    def __init__(self, store: Store, queue: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._records = store.records
        self._broker = store.broker
        self._queue = queue
        self._batch_size = batch_size
        self._envelopes = EnvelopeBuilder(queue)
        self._replay = store.script("replay")

    def add(self, letter: DeadLetter) -> None:
        """Store one entry."""
        pipe = self._records.pipeline(transaction=True)
        pipe.hset(keys.DEAD, letter.id, json.dumps(letter.as_dict()))
        pipe.zadd(keys.DEAD_INDEX, {letter.id: letter.at})
        pipe.execute()

    def entries(self, *, contains: str | None = None) -> list[DeadLetter]:
        """Entries, newest first; `contains` keeps those whose reason or id mentions it."""
        ids: list[str] = self._records.zrevrange(keys.DEAD_INDEX, 0, -1)  # type: ignore[assignment]
        return [letter for letter in self.get_many(ids) if _matches(letter, contains)]

    def get(self, letter_id: str) -> DeadLetter | None:
        """One entry by its id (a job id for failed jobs)."""
        return next(iter(self.get_many([letter_id])), None)

    def get_many(self, letter_ids: Iterable[str]) -> list[DeadLetter]:
        """The entries of these ids that exist, in order, read in one round trip."""
        ids = list(letter_ids)
        if not ids:
            return []
        return [DeadLetter(**json.loads(raw)) for raw in self._records.hmget(keys.DEAD, ids) if raw]

    def replay(self, letter_ids: Iterable[str]) -> list[str]:
        """Queue these failed jobs again under their own ids; returns the job ids replayed."""
        job_ids = [letter.job_id for letter in self.get_many(letter_ids) if letter.job_id]
        now = time.time()
        pipe = self._records.pipeline(transaction=False)
        for job_id in job_ids:
            self._replay(
                keys=[
                    keys.job(job_id),
                    keys.events(job_id),
                    keys.DEAD,
                    keys.DEAD_INDEX,
                    keys.UNFINISHED,
                ],
                args=[job_id, now],
                client=pipe,
            )
        replayed = [job_id for job_id, done in zip(job_ids, pipe.execute(), strict=True) if done]
        if replayed:
            self._broker.lpush(
                self._queue, *self._envelopes.build_chunks(replayed, self._batch_size)
            )
        return replayed

    def purge(self, letter_ids: Iterable[str] | None = None) -> int:
        """Delete these entries (all when None); returns how many were deleted."""
        ids = (
            list(letter_ids)
            if letter_ids is not None
            else self._records.zrange(keys.DEAD_INDEX, 0, -1)
        )
        if not ids:
            return 0
        pipe = self._records.pipeline(transaction=True)
        pipe.hdel(keys.DEAD, *ids)
        pipe.zrem(keys.DEAD_INDEX, *ids)
        deleted, _ = pipe.execute()
        return int(deleted)


def _matches(letter: DeadLetter, contains: str | None) -> bool:
    if not contains:
        return True
    needle = contains.lower()
    return needle in letter.reason.lower() or needle in letter.id.lower()
