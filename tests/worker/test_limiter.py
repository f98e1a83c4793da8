"""The adaptive limit of sends in flight: growth, back-off, and the gate itself."""

from __future__ import annotations

import asyncio

import pytest

from worker.limiter import WINDOW, AdaptiveLimit, Stopped


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def busy_windows(limit: AdaptiveLimit, clock: Clock, latency: float, windows: int) -> None:
    """Answers at `latency` with the limit full, for `windows` windows (round trips)."""
    for _ in range(windows):
        limit.in_flight = int(limit.limit)
        for _ in range(9):
            answer(limit, latency)
        clock.now += max(WINDOW, latency) * 1.01  # a little over: the clock is in floats
        answer(limit, latency)  # the window's last answer: the limit moves


def cpu_bound_windows(limit: AdaptiveLimit, clock: Clock, per_send: float, windows: int) -> None:
    """Answers as a worker whose CPU is the limit slows them: in proportion to the sends in
    flight."""
    for _ in range(windows):
        busy_windows(limit, clock, latency=per_send * limit.limit, windows=1)


def answer(limit: AdaptiveLimit, latency: float) -> None:
    """One send of a full limit answers, and another takes its place."""
    limit.in_flight -= 1
    limit.record(latency)
    limit.in_flight += 1


def test_steady_slow_answers_grow_the_limit_to_the_maximum() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=1.0, windows=3)  # doubling at first: 128 to 1,024
    assert limit.limit == 1024
    busy_windows(limit, clock, latency=1.0, windows=4)  # then by a quarter of the start
    assert limit.limit == 1024 + 4 * 32
    busy_windows(limit, clock, latency=1.0, windows=40)
    assert limit.limit == 2048


def test_slow_start_never_doubles_past_its_end() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=2)
    busy_windows(limit, clock, latency=0.0135, windows=2)  # cut to 379, then a new pace: 759
    assert limit.limit == pytest.approx(512 / 1.35 * 2)
    busy_windows(limit, clock, latency=0.0135, windows=1)
    assert limit.limit == 1024  # eight times the start, not 1,517


def test_answers_a_little_slower_than_lately_hold_the_limit() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=2)
    busy_windows(limit, clock, latency=0.0112, windows=5)  # a queue starting to form
    assert limit.limit == 512


def test_the_limit_moves_once_per_round_trip() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    for _ in range(13):  # 1.2 s of windows, while each answer takes 1 s
        limit.in_flight = int(limit.limit)
        limit.record(1.0)
        clock.now += WINDOW
    assert limit.limit == 512  # the first window, then one round trip later


@pytest.mark.parametrize(("latency", "cut"), [(0.016, 0.625), (0.02, 0.5), (0.5, 0.5)])
def test_answers_slowing_down_shrink_the_limit_in_proportion(latency: float, cut: float) -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=40)
    grown = limit.limit
    busy_windows(limit, clock, latency=latency, windows=1)
    assert limit.limit == pytest.approx(grown * cut)


def test_slow_answers_never_take_the_limit_below_the_start() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=2)
    limits = []
    for _ in range(20):
        cpu_bound_windows(limit, clock, per_send=0.0002, windows=1)
        limits.append(limit.limit)
    assert min(limits) == 128


def test_past_slow_start_a_cut_limit_grows_back_step_by_step() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=2)
    busy_windows(limit, clock, latency=0.02, windows=1)  # a queue: halved to 256
    busy_windows(limit, clock, latency=0.01, windows=4)
    assert limit.limit == 256 + 4 * 32  # not doubled, nor grown by a quarter of itself


def test_one_queue_cuts_the_limit_once() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=40)  # grown to 2,048
    busy_windows(limit, clock, latency=0.02, windows=1)  # a queue: halved
    for _ in range(4):  # the sends already waiting in it answer late, within 0.4 s
        clock.now += WINDOW
        limit.record(0.5)
    assert limit.limit == 1024


def test_answers_slow_at_the_starting_limit_are_the_new_pace() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=2)
    cpu_bound_windows(limit, clock, per_send=0.0002, windows=2)  # a queue of ours: to 128
    assert limit.limit == 128
    busy_windows(limit, clock, latency=0.03, windows=1)  # at 128, slower still: a new pace
    assert limit.limit == 256  # learnt and probed for at once: slow start again
    busy_windows(limit, clock, latency=0.03, windows=2)
    assert limit.limit == 1024


def test_answers_no_faster_after_a_cut_are_the_new_pace() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=2)
    busy_windows(limit, clock, latency=0.05, windows=1)  # taken for a queue of ours: cut
    assert limit.limit == 256
    busy_windows(limit, clock, latency=0.05, windows=1)  # half the sends, no faster answers
    assert limit.limit == 512  # Zixflow's new pace: probed for at once


def test_answers_slower_than_a_queue_of_ours_explains_are_the_new_pace() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    busy_windows(limit, clock, latency=0.01, windows=2)  # 512 in flight: 4 times the start
    limit.in_flight = 512
    for _ in range(5):  # the sends of the old pace still answering as the new one begins
        answer(limit, 0.01)
    clock.now += WINDOW * 1.01
    answer(limit, 1.0)  # 100 times slower with 4 times the sends: Zixflow's new pace
    assert limit.limit == 1024  # no cut: probed for at once
    for _ in range(3):  # answers to sends made before, slower still: not counted
        clock.now += WINDOW
        answer(limit, 1.5)
    assert limit.limit == 1024
    clock.now += 1.0
    limit.in_flight = 1024
    answer(limit, 1.0)  # the first answer to a send made at the new pace: learnt, and
    assert limit.limit == 1024 + 32  # grown by a quarter of the start: slow start ended


def test_an_idle_limit_does_not_grow() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, clock=clock)
    for _ in range(20):
        limit.record(0.01)  # one send at a time: the limit is not what holds it back
        clock.now += WINDOW
    assert limit.limit == 128


def test_throttling_halves_the_limit_down_to_the_minimum() -> None:
    clock = Clock()
    limit = AdaptiveLimit(128, 2048, minimum=4, clock=clock)
    for _ in range(10):
        limit.record(0.01, throttled=True)
        clock.now += WINDOW
    assert limit.limit == 4


def test_the_gate_holds_sends_past_the_limit_and_stop_turns_them_away() -> None:
    async def scenario() -> tuple[int, list[str]]:
        limit = AdaptiveLimit(2, 2)
        events: list[str] = []
        release = asyncio.Event()

        async def send(name: str) -> None:
            try:
                async with limit.slot():
                    events.append(f"start {name}")
                    await release.wait()
            except Stopped:
                events.append(f"stopped {name}")

        tasks = [asyncio.create_task(send(name)) for name in "abcd"]
        await asyncio.sleep(0.01)
        most = limit.in_flight
        limit.stop()
        release.set()
        await asyncio.gather(*tasks)
        return most, events

    most, events = asyncio.run(scenario())
    assert most == 2
    assert sorted(events) == ["start a", "start b", "stopped c", "stopped d"]


@pytest.mark.parametrize("initial", [1, 8])
def test_a_waiter_takes_the_place_a_finished_send_leaves(initial: int) -> None:
    async def scenario() -> int:
        limit = AdaptiveLimit(initial, initial)
        done = 0

        async def send() -> None:
            nonlocal done
            async with limit.slot():
                await asyncio.sleep(0)
                done += 1

        await asyncio.gather(*(send() for _ in range(50)))
        assert limit.in_flight == 0
        return done

    assert asyncio.run(scenario()) == 50
