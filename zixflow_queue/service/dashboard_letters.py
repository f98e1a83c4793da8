"""The dead letters for the dashboard: the producer's own DeadLetters, run in the threadpool."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from producer.deadletters import DeadLetter, DeadLetters
from producer.settings import ProducerSettings
from producer.store import Store

THREADS = 4
"""Dashboard calls that may run at once, each holding a connection."""


class AsyncDeadLetters:
    """Lists, replays and purges dead letters from asyncio code, with a Redis client of its own."""

    def __init__(self, settings: ProducerSettings) -> None:
        self._store = Store.connect(settings, threads=THREADS)
        self._letters = DeadLetters(self._store, settings)

    async def entries(self, contains: str | None) -> list[DeadLetter]:
        """Entries newest first; with `contains`, those whose reason, id or answer has it."""
        return await run_in_threadpool(self._letters.entries, contains=contains)

    async def replay(self, letter_ids: Sequence[str]) -> list[str]:
        """Queue these failed jobs again under their own ids; the ids replayed."""
        return await run_in_threadpool(self._letters.replay, letter_ids)

    async def purge(self, letter_ids: Sequence[str]) -> int:
        """Delete these entries; how many were deleted."""
        return await run_in_threadpool(self._letters.purge, letter_ids)

    def close(self) -> None:
        """Close the Redis connections."""
        self._store.records.close()
        if not self._store.shared:
            self._store.broker.close()
