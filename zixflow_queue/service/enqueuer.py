"""Storing the jobs of requests that arrive together with one producer call.

A call of its own would cost each request more CPU than all else the service does for it
(redis-py's asyncio client spends about 0.3 ms per call here). So the jobs of requests without
an Idempotency-Key that arrive in the same event-loop turn go to `AsyncProducer.enqueue_jobs`
together, up to one atomic script call (CHUNK jobs): each request is stored whole or not at
all, and answered with its own ids, or its own ValidationError. A request with a key is stored
on its own, as the key's atomic check-and-store is per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from producer.aio import AsyncProducer
from producer.enqueue import CHUNK
from producer.errors import FieldProblem, ValidationError
from producer.jobs import Job
from producer.tracing import with_trace


@dataclass(frozen=True)
class _Request:
    jobs: Sequence[Job]
    answer: asyncio.Future[list[str]]


class Enqueuer:
    """Validates and stores each request's jobs, sharing producer calls between requests."""

    def __init__(self, producer: AsyncProducer) -> None:
        self._producer = producer
        self._waiting: list[_Request] = []
        self._rounds: set[asyncio.Task[None]] = set()

    async def enqueue(self, jobs: Sequence[Job], idempotency_key: str | None) -> list[str]:
        """Validate and store the jobs (ValidationError, StorageError...); their ids in order."""
        if len(jobs) > CHUNK:  # one script call per request: all of it is stored, or none
            raise ValueError(f"at most {CHUNK} jobs per request, got {len(jobs)}")
        if idempotency_key is not None:
            return await self._producer.enqueue_jobs(jobs, idempotency_key=idempotency_key)
        if sum(len(request.jobs) for request in self._waiting) + len(jobs) > CHUNK:
            self._start_round()  # those waiting fill a call: they go now, this one next
        loop = asyncio.get_running_loop()
        # Stored by a call other requests share: each job keeps its own request's trace.
        request = _Request(with_trace(jobs), loop.create_future())
        self._waiting.append(request)
        if len(self._waiting) == 1:  # the first of this turn: store them all in the next one
            loop.call_soon(self._start_round)
        return await request.answer

    def _start_round(self) -> None:
        requests, self._waiting = self._waiting, []
        if requests:
            task = asyncio.create_task(self._round(requests))
            self._rounds.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._rounds.discard)

    async def _round(self, requests: list[_Request]) -> None:
        """Store the requests' jobs in one call; requests with invalid jobs are left out."""
        try:
            while requests:
                try:
                    job_ids = await self._producer.enqueue_jobs(
                        [job for request in requests for job in request.jobs]
                    )
                except ValidationError as error:
                    requests = _refuse_invalid(requests, error)
                else:
                    _share(requests, job_ids)
                    return
        except Exception as error:  # Redis failed them all (or a bug did): each request learns it
            for request in requests:
                _answer(request, error)
        finally:
            # A round cancelled (at shutdown) cancels what it had not answered.
            for request in requests:
                request.answer.cancel()


def _share(requests: Sequence[_Request], job_ids: Sequence[str]) -> None:
    """Give each request the ids of its own jobs."""
    start = 0
    for request in requests:
        _answer(request, list(job_ids[start : start + len(request.jobs)]))
        start += len(request.jobs)


def _refuse_invalid(requests: Sequence[_Request], error: ValidationError) -> list[_Request]:
    """Answer each request whose jobs have problems with its own; the others, to store again."""
    owners = [(request, index) for request in requests for index in range(len(request.jobs))]
    problems: dict[int, list[FieldProblem]] = {}
    for problem in error.problems:
        request, index = owners[problem.item or 0]  # one job alone is not numbered
        problems.setdefault(id(request), []).append(
            FieldProblem(problem.path, problem.problem, index)
        )
    for request in requests:
        if id(request) in problems:
            _answer(request, ValidationError(problems[id(request)]))
    return [request for request in requests if id(request) not in problems]


def _answer(request: _Request, outcome: list[str] | BaseException) -> None:
    if request.answer.done():  # its client went away and the request was cancelled
        return
    if isinstance(outcome, BaseException):
        request.answer.set_exception(outcome)
    else:
        request.answer.set_result(outcome)
