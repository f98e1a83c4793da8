"""Group commit across threads: who writes, with which items, and what each caller learns."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from producer import Producer, StorageError, group_commit
from producer.group_commit import GroupCommit
from producer.jobs import NewJob
from tests.support import wait_until, wire_message


@dataclass
class HeldWrites:
    """A write that records its batches; the first waits until `release` is set."""

    release: threading.Event = field(default_factory=threading.Event)
    batches: list[list[str]] = field(default_factory=list)
    fail_with: Exception | None = None

    def __call__(self, items: list[str]) -> None:
        self.batches.append(items)
        if len(self.batches) == 1:
            assert self.release.wait(timeout=10), "the test never released the first write"
        if self.fail_with is not None:
            raise self.fail_with


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as executor:
        yield executor


def waiting(group: GroupCommit[Any]) -> int:
    return len(group._waiting)


def submit_while_held(
    group: GroupCommit[str], write: HeldWrites, pool: ThreadPoolExecutor, items: list[str]
) -> list[Future[None]]:
    """Submit the first item, and the rest while its write is held; then let it go."""
    first = pool.submit(group.submit, items[0])
    wait_until(lambda: write.batches, timeout=10, what="the first write")
    rest = [pool.submit(group.submit, item) for item in items[1:]]
    wait_until(lambda: waiting(group) == len(items) - 1, timeout=10, what="the others waiting")
    write.release.set()
    return [first, *rest]


def test_a_lone_call_writes_its_item_at_once() -> None:
    write = HeldWrites()
    write.release.set()
    group = GroupCommit(write, most=10)
    group.submit("a")
    group.submit("b")
    assert write.batches == [["a"], ["b"]]


@pytest.mark.parametrize(("most", "sizes"), [(10, [1, 4]), (2, [1, 2, 2])])
def test_calls_made_during_a_write_go_together_in_the_next(
    pool: ThreadPoolExecutor, most: int, sizes: list[int]
) -> None:
    write = HeldWrites()
    group = GroupCommit(write, most=most)
    for call in submit_while_held(group, write, pool, ["a", "b", "c", "d", "e"]):
        call.result(timeout=10)
    assert write.batches[0] == ["a"]
    assert [len(batch) for batch in write.batches] == sizes  # at most `most` a write
    assert sorted(item for batch in write.batches for item in batch) == ["a", "b", "c", "d", "e"]
    assert waiting(group) == 0 and not group._writing


def test_a_failed_write_fails_each_of_its_callers_and_the_next_one_writes(
    pool: ThreadPoolExecutor,
) -> None:
    write = HeldWrites(fail_with=redis.ConnectionError("gone"))
    group = GroupCommit(write, most=10)
    for call in submit_while_held(group, write, pool, ["a", "b", "c"]):
        with pytest.raises(redis.ConnectionError, match="gone"):
            call.result(timeout=10)
    write.fail_with = None
    group.submit("d")
    assert write.batches[-1] == ["d"]


def test_a_call_made_from_within_a_write_by_its_own_thread_writes_on_its_own() -> None:
    batches: list[list[str]] = []

    def write(items: list[str]) -> None:
        batches.append(items)
        if items == ["outer"]:  # as a signal handler would, on the thread that is writing
            group.submit("inner")

    group = GroupCommit(write, most=10)
    group.submit("outer")
    assert batches == [["outer"], ["inner"]]
    assert waiting(group) == 0 and not group._writing


class _InterruptedOnWaking:
    """A call's `done` lock whose waiter is interrupted (KeyboardInterrupt) once woken."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def acquire(self) -> None:
        self._lock.acquire()
        raise KeyboardInterrupt

    def release(self) -> None:
        self._lock.release()


def test_a_caller_interrupted_as_it_is_to_lead_passes_the_lead_on(
    pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Call(group_commit._Call[str]):
        def __init__(self, item: str) -> None:
            super().__init__(item)
            if item == "b":
                self.done = _InterruptedOnWaking(self.done)  # type: ignore[assignment]

    monkeypatch.setattr(group_commit, "_Call", Call)
    write = HeldWrites()
    group = GroupCommit(write, most=10)
    first = pool.submit(group.submit, "a")
    wait_until(lambda: write.batches, timeout=10, what="the first write")
    interrupted = pool.submit(group.submit, "b")
    wait_until(lambda: waiting(group) == 1, timeout=10, what="b waiting")
    last = pool.submit(group.submit, "c")
    wait_until(lambda: waiting(group) == 2, timeout=10, what="c waiting")
    write.release.set()

    first.result(timeout=10)
    last.result(timeout=10)  # b was to lead the next write: c leads it instead
    with pytest.raises(KeyboardInterrupt):
        interrupted.result(timeout=10)
    assert write.batches == [["a"], ["c"]]
    assert waiting(group) == 0 and not group._writing


def _submit_in_child(group: GroupCommit[str]) -> None:
    group.submit("child")  # would wait forever for the parent's write without the reset


def test_a_forked_child_writes_though_a_parent_thread_was_writing(
    pool: ThreadPoolExecutor,
) -> None:
    write = HeldWrites()
    group = GroupCommit(write, most=10)
    parent = pool.submit(group.submit, "parent")
    wait_until(lambda: write.batches, timeout=10, what="the parent's write")
    child = multiprocessing.get_context("fork").Process(target=_submit_in_child, args=(group,))
    child.start()
    child.join(timeout=20)
    if child.is_alive():
        child.kill()
    write.release.set()
    parent.result(timeout=10)
    assert child.exitcode == 0


@pytest.fixture
def held_producer(
    fake_producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> tuple[Producer, HeldWrites]:
    """The producer, its shared writes recorded (job ids) and the first held till released."""
    store = fake_producer._store_together
    write = HeldWrites()

    def held(jobs: list[NewJob]) -> None:
        write([job.job_id for job in jobs])
        store(jobs)

    monkeypatch.setattr(fake_producer._together, "_write", held)
    return fake_producer, write


def enqueue_while_held(
    producer: Producer, write: HeldWrites, pool: ThreadPoolExecutor, count: int
) -> list[Future[str]]:
    """`count` single enqueues, all but the first made while the first one's write is held."""
    messages = [wire_message(to=f"9198000000{n:02d}") for n in range(count)]
    first = pool.submit(producer.enqueue, messages[0])
    wait_until(lambda: write.batches, timeout=10, what="the first write")
    rest = [pool.submit(producer.enqueue, message) for message in messages[1:]]
    wait_until(lambda: waiting(producer._together) == count - 1, timeout=10, what="waiting")
    write.release.set()
    return [first, *rest]


def test_threads_enqueueing_one_message_each_share_script_calls(
    held_producer: tuple[Producer, HeldWrites], pool: ThreadPoolExecutor
) -> None:
    producer, write = held_producer
    job_ids = [call.result(timeout=10) for call in enqueue_while_held(producer, write, pool, 4)]

    assert [len(batch) for batch in write.batches] == [1, 3]
    statuses = producer.get_statuses(job_ids)
    assert [status.to if status else None for status in statuses] == [
        f"9198000000{n:02d}" for n in range(4)
    ]
    assert sorted(producer.store.records.lrange(producer.keys.ready, 0, -1)) == sorted(job_ids)


def test_a_shared_write_redis_refuses_fails_each_caller_with_nothing_stored(
    held_producer: tuple[Producer, HeldWrites],
    pool: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer, write = held_producer

    def refused(*_: object) -> None:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(producer, "_run", refused)
    for call in enqueue_while_held(producer, write, pool, 3):
        with pytest.raises(StorageError, match="Connection refused") as caught:
            call.result(timeout=10)
        assert caught.value.enqueued == ()
    assert [len(batch) for batch in write.batches] == [1, 2]
    assert producer.store.records.llen(producer.keys.ready) == 0
