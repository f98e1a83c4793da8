"""Group commit across threads: calls made while one write is under way go out in the next.

A web app's threads each enqueue one message per request. Each call of its own would cost a
Redis round trip, a script call and redis-py's call machinery per message; sharing a write
costs the callers who wait only a lock hand-off.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


class _Call(Generic[Item]):
    """One caller's item, the error its write raised, and whether it leads the next write."""

    __slots__ = ("done", "error", "item", "leads")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.error: BaseException | None = None
        self.leads = False
        self.done = threading.Lock()
        self.done.acquire()  # released when its write is over, or when it is to lead


class GroupCommit(Generic[Item]):
    """Turns concurrent one-item calls from many threads into few calls of `write`.

    No timer and no thread of its own: a call made while no write is under way writes at
    once, and leads. Calls made meanwhile wait; once the write is over, the first of them
    leads the next one, with every item that came (up to `most`). A lone call waits for its
    own write only; a failed write fails each of its callers with its error.
    """

    _lock: threading.Lock
    _waiting: list[_Call[Item]]
    _writing: bool
    _leader: int | None
    """The thread writing now: a call it makes from within the write (a signal handler's)
    writes on its own instead of waiting for itself."""

    def __init__(self, write: Callable[[list[Item]], object], most: int) -> None:
        self._write = write
        self._most = most
        self._reset()
        _instances.add(self)

    def submit(self, item: Item) -> None:
        """Write `item` with those of the calls made meanwhile; raises what the write raised."""
        if self._leader == threading.get_ident():
            self._write([item])
            return
        call = _Call(item)
        with self._lock:
            self._waiting.append(call)
            call.leads = not self._writing
            self._writing = True
        if not call.leads:
            try:
                call.done.acquire()
            except BaseException:  # interrupted while waiting (KeyboardInterrupt)
                self._leave(call)
                raise
        if call.leads:
            self._lead(call)
        if call.error is not None:
            raise call.error

    def _lead(self, leader: _Call[Item]) -> None:
        with self._lock:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
        self._leader = threading.get_ident()
        try:
            self._write([call.item for call in batch])
        except BaseException as error:  # each caller of the write learns it
            for call in batch:
                call.error = error
        self._leader = None
        with self._lock:
            self._hand_over()
        for call in batch:
            if call is not leader:
                call.done.release()

    def _hand_over(self) -> None:
        """The first waiting call leads the next write, or none is under way (lock held)."""
        if self._waiting:
            successor = self._waiting[0]
            successor.leads = True
            successor.done.release()
        else:
            self._writing = False

    def _leave(self, call: _Call[Item]) -> None:
        """Withdraw a call whose caller stopped waiting, passing on the lead if it had it."""
        with self._lock:
            if call in self._waiting:
                self._waiting.remove(call)
            if call.leads:
                self._hand_over()

    def _reset(self) -> None:
        """No write under way; in a forked child, a write of the parent's threads never ends."""
        self._lock = threading.Lock()
        self._waiting = []
        self._writing = False
        self._leader = None


_instances: weakref.WeakSet[GroupCommit[Any]] = weakref.WeakSet()


def _after_fork() -> None:
    for instance in list(_instances):
        instance._reset()


os.register_at_fork(after_in_child=_after_fork)
