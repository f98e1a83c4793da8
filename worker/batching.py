"""Group commit: calls that arrive while one write is in flight go out together in the next."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Reply = TypeVar("Reply")


class Batcher(Generic[Item, Reply]):
    """Turns many concurrent one-item calls into few calls of `write` on a list of items.

    No timer and no size to tune: the first call writes at once, and every call made while
    that write is in flight joins the next one. Batches grow with the load, and a lone call
    waits no longer than its own round trip. A failed write fails each of its callers.
    """

    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Reply]]]) -> None:
        self._write = write
        self._waiting: list[tuple[Item, asyncio.Future[Reply]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Reply:
        """Queue `item` for the next write and return its reply once written."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    replies = await self._write([item for item, _ in batch])
                except Exception as error:  # each caller gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        finally:
            self._flusher = None
