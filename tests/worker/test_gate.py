"""The adaptive concurrency gate: its arithmetic, and that it really holds callers back."""

from __future__ import annotations

import threading

import pytest

from tests.support import wait_until
from worker.gate import WINDOW, ConcurrencyGate


def feed(gate: ConcurrencyGate, wall: float, cpu: float) -> int:
    grown = 0
    for _ in range(WINDOW):
        grown = gate._observe(wall, cpu)
    return grown


@pytest.mark.parametrize(
    ("wall", "cpu", "limit"),
    [
        (0.001, 0.001, 4),  # no network wait to hide: the minimum
        (0.010, 0.001, 20),  # 10 ms of waiting per 1 ms of work, doubled
        (0.101, 0.001, 128),  # far more than the maximum allows
    ],
)
def test_limit_follows_latency_over_cpu_time(wall: float, cpu: float, limit: int) -> None:
    gate = ConcurrencyGate(maximum=128)
    feed(gate, wall, cpu)
    assert gate.limit == limit


def test_limit_moves_only_at_the_end_of_a_window() -> None:
    gate = ConcurrencyGate(maximum=128)
    for _ in range(WINDOW - 1):
        gate._observe(0.001, 0.001)
    assert gate.limit == 128
    assert gate._observe(0.001, 0.001) == 0
    assert gate.limit == 4
    assert feed(gate, 0.010, 0.001) == 16


def test_slot_holds_callers_beyond_the_limit() -> None:
    gate = ConcurrencyGate(maximum=2, minimum=2)
    release = threading.Event()
    inside: list[int] = []

    def work(n: int) -> None:
        with gate.slot():
            inside.append(n)
            release.wait(10)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(inside) == 2, timeout=5, what="two callers inside")
    assert gate._active == 2 and len(inside) == 2  # the third waits for a slot
    release.set()
    for thread in threads:
        thread.join(5)
    assert sorted(inside) == [0, 1, 2]
    assert gate._active == 0
