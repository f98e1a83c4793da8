"""How many sends a worker keeps in flight: a limit that follows Zixflow's answers.

By Little's law a worker sends `in flight / latency` messages a second: at 1 s answers, 1,000
a second needs 1,000 sends in flight, at 10 ms only 10. So the limit grows while sends use it
and answers come back no slower than usual, shrinks when answers slow down (a queue is
forming, at Zixflow or in this process), and halves when Zixflow throttles, as TCP and
Netflix's concurrency-limits do. Like TCP, it doubles at first (slow start), until answers
first slow down or Zixflow first throttles, then grows by a quarter. Slowing answers never
take it below the starting limit, where the latency is this worker's own CPU at work.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

WINDOW = 0.1
"""Seconds of answers looked at together before the limit moves."""
TOLERANCE = 2.0
"""Answers this many times slower than the usual latency mean a queue is forming."""
SLOW_START = 2.0
GROWTH = 1.25
SHRINK = 0.9
BASELINE_WEIGHT = 0.05
"""How fast the usual latency follows a lasting change (per window)."""


class Stopped(Exception):
    """The worker is stopping: no new send may start."""


@dataclass
class _Window:
    started: float
    latencies: list[float] = field(default_factory=list)
    throttled: bool = False
    busiest: int = 0


class AdaptiveLimit:
    """An asyncio gate for sends whose width follows latency and throttling."""

    def __init__(
        self,
        initial: int,
        maximum: int,
        minimum: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.floor = min(initial, maximum)
        self.minimum = min(minimum, self.floor)
        self.maximum = maximum
        self.limit = float(self.floor)
        self.in_flight = 0
        self.baseline: float | None = None
        """The usual latency: a slow moving average of each window's mean."""
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._clock = clock
        self._growth = SLOW_START
        self._window = _Window(clock())
        self._stopped = False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Hold one place in flight for the block; raises Stopped once the worker stops."""
        await self._acquire()
        slot = Slot()
        try:
            yield slot
        finally:
            self._release(slot)

    def stop(self) -> None:
        """Let no new send start: every waiter gets Stopped."""
        self._stopped = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Stopped())

    async def _acquire(self) -> None:
        if self._stopped:
            raise Stopped()
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releaser counted this send in flight already
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(Slot())
            raise

    def _release(self, slot: Slot) -> None:
        self.in_flight -= 1
        self.record(slot.latency, throttled=slot.throttled)
        while self._waiters and self.in_flight < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def record(self, latency: float | None, *, throttled: bool = False) -> None:
        """Count one answer; move the limit once a window of answers is in."""
        window = self._window
        window.busiest = max(window.busiest, self.in_flight + 1)
        window.throttled |= throttled
        if latency is not None:
            window.latencies.append(latency)
        now = self._clock()
        if now - window.started >= WINDOW:
            self._adjust(window)
            self._window = _Window(now)

    def _adjust(self, window: _Window) -> None:
        if window.throttled:
            self.limit = max(self.minimum, self.limit / 2)
            self._growth = GROWTH
            return
        if not window.latencies:
            return
        mean = sum(window.latencies) / len(window.latencies)
        baseline = mean if self.baseline is None else self.baseline
        if mean > TOLERANCE * baseline:
            self.limit = max(min(self.floor, self.limit), self.limit * SHRINK)
            self._growth = GROWTH
        elif window.busiest >= 0.8 * self.limit:  # in use: probe for more
            self.limit = min(self.maximum, self.limit * self._growth)
        self.baseline = baseline + BASELINE_WEIGHT * (mean - baseline)


@dataclass
class Slot:
    """What one send reports back to the limit."""

    latency: float | None = None
    throttled: bool = False
