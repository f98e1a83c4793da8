"""Group commit: concurrent calls share writes, each caller gets its own reply or the error."""

from __future__ import annotations

import asyncio

import pytest

from worker.batching import Batcher


class Recorder:
    """A write that records each batch it was given and answers after a round trip."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self._fail_on = fail_on

    async def write(self, items: list[int]) -> list[str]:
        self.batches.append(items)
        await asyncio.sleep(0.001)
        if self._fail_on in items:
            raise ConnectionError("redis went away")
        return [f"reply {item}" for item in items]


def test_calls_made_during_a_write_share_the_next_one() -> None:
    recorder = Recorder()

    async def scenario() -> list[str]:
        batcher = Batcher(recorder.write)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0)  # the first write is now in flight
        rest = [batcher.submit(n) for n in range(1, 6)]
        return await asyncio.gather(first, *rest)

    replies = asyncio.run(scenario())

    assert replies == [f"reply {n}" for n in range(6)]
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]


def test_a_lone_call_is_written_at_once_and_alone() -> None:
    recorder = Recorder()

    async def scenario() -> list[str]:
        batcher = Batcher(recorder.write)
        return [await batcher.submit(n) for n in range(3)]

    assert asyncio.run(scenario()) == ["reply 0", "reply 1", "reply 2"]
    assert recorder.batches == [[0], [1], [2]]


def test_a_failed_write_fails_its_callers_and_no_one_else() -> None:
    recorder = Recorder(fail_on=2)

    async def scenario() -> list[str | BaseException]:
        batcher = Batcher(recorder.write)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0)
        failing = [batcher.submit(n) for n in (1, 2)]
        ends = await asyncio.gather(first, *failing, return_exceptions=True)
        return [*ends, await batcher.submit(3)]

    first, *failed, last = asyncio.run(scenario())

    assert (first, last) == ("reply 0", "reply 3")
    assert [type(end) for end in failed] == [ConnectionError, ConnectionError]
    assert recorder.batches == [[0], [1, 2], [3]]


def test_errors_reach_the_caller() -> None:
    async def scenario() -> str:
        return await Batcher(Recorder(fail_on=7).write).submit(7)

    with pytest.raises(ConnectionError, match="redis went away"):
        asyncio.run(scenario())
