"""The dead-letter store: jobs that failed for good and messages no worker could read."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from producer.envelope import WAKEUP_TTL_MS, EnvelopeBuilder
from producer.settings import ProducerSettings
from producer.store import Store, storage_boundary

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
    """Lists, shows, replays and purges a deployment's dead letters."""

    def __init__(self, store: Store, settings: ProducerSettings) -> None:
        self._records = store.records
        self._broker = store.broker
        self._settings = settings
        self._keys = settings.keys
        self._queue_here = settings.queue if store.shared else ""
        self._envelopes = EnvelopeBuilder(settings.queue)
        self._replay = store.script("replay")

    def add(self, letter: DeadLetter) -> None:
        """Store one entry."""
        with storage_boundary("store a dead letter"):
            pipe = self._records.pipeline(transaction=True)
            pipe.hset(self._keys.dead, letter.id, json.dumps(letter.as_dict()))
            pipe.zadd(self._keys.dead_index, {letter.id: letter.at})
            pipe.execute()

    def entries(self, *, contains: str | None = None) -> list[DeadLetter]:
        """Entries, newest first; `contains` keeps those whose reason, id or answer mentions it."""
        with storage_boundary("list the dead letters", writes=False):
            ids: list[str] = self._records.zrevrange(self._keys.dead_index, 0, -1)  # type: ignore[assignment]
        return [letter for letter in self.get_many(ids) if _matches(letter, contains)]

    def get(self, letter_id: str) -> DeadLetter | None:
        """One entry by its id (a job id for failed jobs)."""
        return next(iter(self.get_many([letter_id])), None)

    def get_many(self, letter_ids: Iterable[str]) -> list[DeadLetter]:
        """The entries of these ids that exist, in order, read in one round trip."""
        ids = list(letter_ids)
        if not ids:
            return []
        with storage_boundary("read the dead letters", writes=False):
            raws = self._records.hmget(self._keys.dead, ids)
        return [DeadLetter(**json.loads(raw)) for raw in raws if raw]

    def replay(self, letter_ids: Iterable[str]) -> list[str]:
        """Queue these failed jobs again under their own ids; returns the job ids replayed.

        Only jobs still failed are replayed; the dead letter of a job sent since is dropped.
        """
        job_ids = [letter.job_id for letter in self.get_many(letter_ids) if letter.job_id]
        replayed: list[str] = []
        size = self._settings.batch_size
        for start in range(0, len(job_ids), size):
            replayed += self._replay_chunk(job_ids[start : start + size])
        return replayed

    def _replay_chunk(self, job_ids: list[str]) -> list[str]:
        keys, settings = self._keys, self._settings
        with storage_boundary("replay the jobs"):
            replayed: list[str] = self._replay(
                keys=[keys.ready, keys.wakeup, self._queue_here, keys.dead, keys.dead_index,
                      keys.unfinished],
                args=[repr(time.time()), settings.record_ttl, WAKEUP_TTL_MS,
                      self._envelopes.template, self._envelopes.ids(), keys.job.prefix,
                      keys.history.prefix, *job_ids],
            )  # fmt: skip
            if replayed and not self._queue_here:
                self._broker.lpush(settings.queue, self._envelopes.build())
        return replayed

    def purge(self, letter_ids: Iterable[str] | None = None) -> int:
        """Delete these entries (all when None); returns how many were deleted."""
        with storage_boundary("purge the dead letters"):
            ids = (
                list(letter_ids)
                if letter_ids is not None
                else self._records.zrange(self._keys.dead_index, 0, -1)
            )
            if not ids:
                return 0
            pipe = self._records.pipeline(transaction=True)
            pipe.hdel(self._keys.dead, *ids)
            pipe.zrem(self._keys.dead_index, *ids)
            deleted, _ = pipe.execute()
        return int(deleted)


def _matches(letter: DeadLetter, contains: str | None) -> bool:
    if not contains:
        return True
    needle = contains.lower()
    answer = json.dumps(letter.last_response or {}, ensure_ascii=False)
    return any(needle in text.lower() for text in (letter.reason, letter.id, answer))
