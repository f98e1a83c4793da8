"""Storing the jobs of requests that arrive together in one Redis round trip.

A round trip of its own would cost each request more CPU than all else the service does for it
(redis-py's asyncio client spends about 0.3 ms per call here). So requests are validated one by
one, each getting its own errors, and those that arrive in the same event-loop turn go to Redis
in one pipeline. Each request's jobs are still one atomic enqueue.lua call with its own
idempotency key, and each call's reply or error goes back to its own request: every request is
answered as `AsyncProducer.enqueue_jobs` would answer it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from producer.aio import AsyncProducer
from producer.enqueue import CHUNK, Calls, EnqueuePlan, wakeup_not_published
from producer.errors import ProducerError, StorageError
from producer.jobs import Job
from producer.store import script_source, storage_boundary

ACTION = "enqueue the jobs"


@dataclass(frozen=True)
class _Request:
    plan: EnqueuePlan
    answer: asyncio.Future[list[str]]


class Enqueuer:
    """Validates and stores the jobs of each request, sharing round trips between requests."""

    def __init__(self, producer: AsyncProducer) -> None:
        self._store = producer.store
        self._queue = producer.settings.queue
        self._calls = Calls(producer.settings, queue_here=producer.store.shared)
        # Called by its SHA in a plain pipeline: a pipeline given the script object asks Redis
        # whether it knows the script first, one more round trip every time.
        self._script = producer.store.records.register_script(
            script_source("producer.scripts", "enqueue")
        )
        self._waiting: list[_Request] = []
        self._rounds: set[asyncio.Task[None]] = set()

    def prepare(self, jobs: Sequence[Job], idempotency_key: str | None) -> EnqueuePlan:
        """Check the jobs (raising ValidationError) and build the call that stores them."""
        if len(jobs) > CHUNK:  # one enqueue.lua call per request: all of it is stored, or none
            raise ValueError(f"at most {CHUNK} jobs per request, got {len(jobs)}")
        return self._calls.prepare(jobs, idempotency_key)

    async def store(self, plan: EnqueuePlan) -> list[str]:
        """Store a prepared request's jobs, with those of the requests of the same turn."""
        loop = asyncio.get_running_loop()
        request = _Request(plan, loop.create_future())
        self._waiting.append(request)
        if len(self._waiting) == 1:  # the first of this turn: store them all in the next one
            loop.call_soon(self._start_round)
        return await request.answer

    def _start_round(self) -> None:
        requests, self._waiting = self._waiting, []
        task = asyncio.create_task(self._round(requests))
        self._rounds.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._rounds.discard)

    async def _round(self, requests: list[_Request]) -> None:
        """Store the requests' jobs in one pipeline and answer each request."""
        try:
            replies = await self._run([request.plan for request in requests])
            wakeups = 0
            for request, reply in zip(requests, replies, strict=True):
                try:
                    wakeups += request.plan.stored_by(range(1), [_raised(reply)])
                except ProducerError as error:  # a conflict, or Redis refusing this call
                    _answer(request, error)
                else:
                    _answer(request, request.plan.job_ids)
            if wakeups and not self._calls.queue_here:
                await self._publish_wakeup()
        except Exception as error:  # Redis failed them all (or a bug did): each request learns it
            for request in requests:
                _answer(request, error)
        finally:
            for (
                request
            ) in requests:  # a round cancelled (shutdown) cancels what it had not answered
                request.answer.cancel()

    async def _run(self, plans: Sequence[EnqueuePlan]) -> list[Any]:
        """One enqueue.lua reply (or error) per plan; loads the script again if Redis lost it."""
        replies = await self._pipeline(plans)
        lost = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost:  # e.g. after a Redis restart or SCRIPT FLUSH; those calls did not run
            with storage_boundary("load the enqueue script"):
                await self._store.records.script_load(self._script.script)
            retried = await self._pipeline([plans[index] for index in lost])
            for index, reply in zip(lost, retried, strict=True):
                replies[index] = reply
        return replies

    async def _pipeline(self, plans: Sequence[EnqueuePlan]) -> list[Any]:
        sha = self._script.sha
        with storage_boundary(ACTION):
            async with self._store.records.pipeline(transaction=False) as pipe:
                for plan in plans:
                    pipe.evalsha(sha, len(plan.keys), *plan.keys, *plan.calls[0])
                # An error of one call is that call's alone: the others may have been stored.
                return await pipe.execute(raise_on_error=False)

    async def _publish_wakeup(self) -> None:
        """Wake the workers through the broker's own Redis (as AsyncProducer does)."""
        try:
            with storage_boundary("publish a wake-up"):
                await self._store.broker.lpush(self._queue, self._calls.envelopes.build())
        except StorageError as error:
            wakeup_not_published(error)


def _raised(reply: Any) -> Any:
    """A pipeline's reply; an error reply raised as the StorageError the producer would raise."""
    if isinstance(reply, Exception):
        with storage_boundary(ACTION):
            raise reply
    return reply


def _answer(request: _Request, outcome: list[str] | BaseException) -> None:
    if request.answer.done():  # its client went away and the request was cancelled
        return
    if isinstance(outcome, BaseException):
        request.answer.set_exception(outcome)
    else:
        request.answer.set_result(outcome)
