"""How many sends a worker keeps in flight: a limit that follows Zixflow's answers.

By Little's law a worker sends `in flight / latency` messages a second: at 1 s answers, 1,000
a second needs 1,000 sends in flight, at 10 ms only 10. So the limit grows while sends use it
and answers come back about as fast as lately (no queue is forming, at Zixflow or in this
process), shrinks in proportion when they do not, and halves when Zixflow throttles, as TCP
and Netflix's concurrency-limits do. Like TCP, it moves once per round trip, when the answers
to sends made at the last limit are in; it doubles at first (slow start), until answers first
slow down or Zixflow first throttles, then grows by a quarter. Slowing answers never take it
below the starting limit, where the latency is this worker's own CPU at work; answers still
slow with no more sends than that in flight are Zixflow's new pace, and the limit starts over
from it, doubling again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

WINDOW = 0.1
"""Fewest seconds of answers looked at together before the limit moves (more when answers
take longer: a window lasts a round trip)."""
TOLERANCE = 1.5
"""A window's answers this much slower than the fastest window lately mean a queue is forming
(in a worker whose CPU is the limit, doubling the sends in flight doubles their latency)."""
SLOW_START = 2.0
GROWTH = 1.25
DEEPEST_CUT = 0.5
"""Slowing answers cut the limit in proportion (Little's law: twice the latency, half the
sends in flight), by half at most per round trip."""
RECENT = 10
"""Windows the fastest is taken over."""


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
        self.recent: deque[float] = deque(maxlen=RECENT)
        """Each recent window's mean latency: the fastest of them is the pace with no queue."""
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._clock = clock
        self._growth = SLOW_START
        self._cut_at = -math.inf
        """When the limit was last cut."""
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
        """Count one answer; move the limit once a window of answers is in.

        Answers to sends that started before the limit was last cut tell of the queue that cut
        was for: they do not count (as TCP cuts its window once per loss event).
        """
        now = self._clock()
        window = self._window
        window.busiest = max(window.busiest, self.in_flight + 1)
        if latency is not None and now - latency >= self._cut_at:
            window.latencies.append(latency)
            window.throttled |= throttled
        if now - window.started >= max(WINDOW, min(self.recent, default=0.0)):
            self._adjust(window, now)
            self._window = _Window(now)

    def _adjust(self, window: _Window, now: float) -> None:
        if window.throttled:
            self.limit = max(self.minimum, self.limit / 2)
            self._growth, self._cut_at = GROWTH, now
            return
        if not window.latencies:
            return
        mean = sum(window.latencies) / len(window.latencies)
        baseline = min(self.recent, default=mean)
        self.recent.append(mean)
        if mean > TOLERANCE * baseline and window.busiest <= self.floor:
            self.recent.clear()  # no queue of ours at the starting limit: Zixflow's new pace
            self.recent.append(mean)
            self._growth = SLOW_START
        elif mean > TOLERANCE * baseline:
            cut = max(DEEPEST_CUT, baseline / mean)
            self.limit = max(min(self.floor, self.limit), self.limit * cut)
            self._growth, self._cut_at = GROWTH, now
        elif window.busiest >= 0.8 * self.limit:  # in use: probe for more
            self.limit = min(self.maximum, self.limit * self._growth)


@dataclass
class Slot:
    """What one send reports back to the limit."""

    latency: float | None = None
    throttled: bool = False
