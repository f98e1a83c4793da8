"""How many sends a worker keeps in flight: a limit that follows Zixflow's answers.

By Little's law a worker sends `in flight / latency` messages a second: at 1 s answers, 1,000
a second needs 1,000 sends in flight, at 10 ms only 10. So the limit grows while sends use it
and answers come back as fast as lately, holds while they come back a little slower (a queue
is starting to form, at Zixflow or in this process), shrinks in proportion when they come
back much slower, and halves when Zixflow throttles, as TCP Vegas and Netflix's
concurrency-limits do. Like TCP, it moves once per round trip, when the answers to sends made
at the last limit are in; it doubles at first (slow start, up to eight times the starting
limit), until answers first slow down or Zixflow first throttles, then grows by a quarter of
the starting limit (additive increase, as TCP's congestion avoidance: a server that stalls
past some number of connections is approached step by step, not overshot by a quarter).
Slowing answers never take it below the starting limit, where the latency is this worker's
own CPU at work. Answers slower than a queue of ours can explain (slowed far more than the
sends in flight grew, or no faster once the limit was cut) are Zixflow's new pace: the limit
learns it from the sends made after it, and starts over doubling.
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
TOLERANCE = 1.25
"""A window's answers this much slower than the fastest window lately mean a queue has formed:
the limit is cut (in a worker whose CPU is the limit, doubling the sends in flight doubles
their latency)."""
OUR_QUEUE_AT_MOST = 4.0
"""Answers slowed down more than this many times as much as the sends in flight grew past the
starting limit come from Zixflow's new pace, not from a queue of ours (Little's law allows
one time, and a busy event loop a little more)."""
HOLD = 1.1
"""Answers this much slower than the fastest lately hold the limit: a queue is starting to
form, and more sends in flight would only lengthen it (TCP Vegas holds its window so)."""
SLOW_START = 2.0
SLOW_START_END = 8
"""Slow start ends at this many times the starting limit at the latest (as TCP's ssthresh):
one doubling past where Zixflow, or this worker, can keep up would queue as many sends
again as can be answered in a round trip."""
GROWTH = 0.25
"""Past slow start, the limit grows by this share of the starting limit each round trip."""
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
        self._slow_start = True
        self._counted_from = -math.inf
        """Answers to sends started before this moment do not count: they tell of a queue the
        limit was already cut for, or of the pace before Zixflow's last change."""
        self._cut_for: float | None = None
        """The mean latency the limit was last cut for, until a window within the cut limit."""
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

        Answers to sends that started before the limit was last cut, or before Zixflow's new
        pace was seen, do not count (as TCP cuts its window once per loss event).
        """
        now = self._clock()
        window = self._window
        window.busiest = max(window.busiest, self.in_flight + 1)
        if latency is not None and now - latency >= self._counted_from:
            window.latencies.append(latency)
            window.throttled |= throttled
        if now - window.started >= max(WINDOW, min(self.recent, default=0.0)):
            self._adjust(window, now)
            self._window = _Window(now)

    def _adjust(self, window: _Window, now: float) -> None:
        if window.throttled:
            self.limit = max(self.minimum, self.limit / 2)
            self._slow_start, self._counted_from, self._cut_for = False, now, None
            return
        if not window.latencies:
            return
        mean = sum(window.latencies) / len(window.latencies)
        baseline = min(self.recent, default=mean)
        self.recent.append(mean)
        cut_for = self._take_settled_cut(window)
        if cut_for is not None and mean * HOLD >= cut_for:
            self._new_pace(now)  # fewer sends in flight, answers no faster: not a queue of ours
        elif mean > TOLERANCE * baseline:
            queued = window.busiest / self.floor  # how far a queue of ours could slow answers
            if queued > 1 and mean < OUR_QUEUE_AT_MOST * queued * baseline:
                cut = max(DEEPEST_CUT, baseline / mean)
                self.limit = max(min(self.floor, self.limit), self.limit * cut)
                self._slow_start, self._counted_from, self._cut_for = False, now, mean
                return
            self._new_pace(now)
        elif mean > HOLD * baseline:
            return  # a queue is starting to form: more sends in flight would only lengthen it
        if window.busiest >= 0.8 * self.limit:  # in use: probe for more
            end = SLOW_START_END * self.floor
            if self._slow_start and self.limit < end:
                grown = min(self.limit * SLOW_START, end)
            else:
                grown = self.limit + self.floor * GROWTH
            self.limit = min(self.maximum, grown)

    def _take_settled_cut(self, window: _Window) -> float | None:
        """The mean latency of the last cut, with the first window within the cut limit; it is
        forgotten then, so a cut is compared with the answers after it once."""
        cut_for = self._cut_for
        if cut_for is None or window.busiest > self.limit + 1:
            return None
        self._cut_for = None
        return cut_for

    def _new_pace(self, now: float) -> None:
        """Zixflow answers at a new pace: learn it from the answers to sends made from now on,
        and probe for the sends in flight it allows (slow start)."""
        self.recent.clear()
        self._slow_start, self._counted_from = True, now


@dataclass
class Slot:
    """What one send reports back to the limit."""

    latency: float | None = None
    throttled: bool = False
