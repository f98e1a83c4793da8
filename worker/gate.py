"""How many sends a worker runs at once: enough to hide the network, few enough to spare the GIL.

Threads that are all runnable at once fight over the GIL, and that fight cost more CPU per
message than the sends themselves (measured: 2.4 ms of worker CPU per message with 128
runnable threads, 1.1 ms with 4). So the send pool keeps only as many sends going as the
latency needs: by Little's law, the uncontended time of one send (the fastest in a recent
window) over the CPU time it takes, with headroom. At 0 ms of added latency that is a handful;
at 100 ms, around a hundred.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

WINDOW = 200
"""Sends per window over which the fastest send and the mean CPU time are taken."""
HEADROOM = 2.0


class ConcurrencyGate:
    """Lets up to `limit` callers in at once, adapting the limit to what sends cost."""

    def __init__(self, maximum: int, minimum: int = 4) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.limit = self.maximum
        self._active = 0
        self._lock = threading.Condition()
        self._fastest = math.inf
        self._cpu = 0.0
        self._seen = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the slots while the body runs, waiting for one if none is free."""
        with self._lock:
            while self._active >= self.limit:
                self._lock.wait()
            self._active += 1
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            with self._lock:
                self._active -= 1
                opened = self._observe(wall, cpu)
                # Wake only as many waiters as there are free slots: waking them all would
                # have them fight over the lock and the GIL for nothing.
                self._lock.notify(opened + 1)

    def _observe(self, wall: float, cpu: float) -> int:
        """Take one send's times into account; returns by how much the limit grew."""
        self._fastest = min(self._fastest, wall)
        self._cpu += cpu
        self._seen += 1
        if self._seen < WINDOW:
            return 0
        per_send = max(self._cpu / self._seen, 1e-6)
        wanted = math.ceil(HEADROOM * self._fastest / per_send)
        previous, self.limit = self.limit, max(self.minimum, min(self.maximum, wanted))
        self._fastest, self._cpu, self._seen = math.inf, 0.0, 0
        return max(0, self.limit - previous)
