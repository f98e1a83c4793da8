"""The parts one worker process shares between its tasks, built once on first use."""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import redis.asyncio

from producer.deadletters import DeadLetters
from producer.store import Store, connection_options
from worker.delivery import Courier
from worker.errors import ConfigurationError
from worker.event_loop import EventLoopThread
from worker.jobs import JobRecords
from worker.scheduler import Scheduler
from worker.settings import WorkerSettings, worker_settings
from worker.zixflow import ZixflowClient, open_session

stopping = threading.Event()
"""Set when the worker begins a warm shutdown: no new sends start after it."""

WAIT_STEP = 0.5
"""How often a delivery task waiting on its sends looks at whether the worker is stopping."""


class SendsStillInFlight(Exception):
    """The worker is stopping and a delivery task's sends outlasted ZQ_SHUTDOWN_GRACE."""


@dataclass(frozen=True)
class Runtime:
    """Event loop, courier, dead letters and scheduler of this worker process."""

    settings: WorkerSettings
    sends: EventLoopThread
    courier: Courier
    dead_letters: DeadLetters
    scheduler: Scheduler

    def deliver(self, job_ids: Sequence[str]) -> dict[str, int]:
        """Deliver jobs on the event loop and wait; returns how many ended each way.

        Once the worker is stopping, the sends in flight get ZQ_SHUTDOWN_GRACE seconds;
        `SendsStillInFlight` is raised if they are not all recorded by then.
        """
        future = self.sends.submit(self.courier.deliver_all(job_ids))
        deadline = math.inf
        while True:
            try:
                return future.result(timeout=WAIT_STEP)
            except TimeoutError:
                pass
            if stopping.is_set():
                deadline = min(deadline, time.monotonic() + self.settings.shutdown_grace)
            if time.monotonic() >= deadline:
                future.cancel()
                raise SendsStillInFlight("sends still in flight at the end of the grace period")

    def stop_sending(self) -> None:
        """Start no new send: jobs not yet started go back to the schedule."""
        stopping.set()
        self.scheduler.stop()
        self.sends.loop.call_soon_threadsafe(self.courier.stop)

    def close(self) -> None:
        """Abandon sends still in flight, close the connections and stop the event loop."""
        self.sends.call(self.courier.close())
        self.sends.stop()


def worker_id() -> str:
    """This process's name in job records: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def require_api_key(settings: WorkerSettings) -> str:
    """The Zixflow API key, or a clear error saying the worker will not send without one."""
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        raise ConfigurationError(
            "ZIXFLOW_API_KEY is not set: a worker refuses to send without a Zixflow API key"
        )
    return settings.api_key.get_secret_value()


def async_redis(settings: WorkerSettings) -> redis.asyncio.Redis:
    """The event loop's client for job records (a few connections: its calls are batched)."""
    return redis.asyncio.Redis.from_url(
        settings.redis_url, **connection_options(settings.socket_timeout)
    )


def built_runtime() -> Runtime | None:
    """This process's runtime if something has built it already, else None (builds nothing)."""
    return runtime() if runtime.cache_info().currsize else None


@cache
def runtime() -> Runtime:
    """Build this process's runtime from the environment's settings."""
    settings = worker_settings()
    store = Store.connect(settings, threads=settings.concurrency)
    sends = EventLoopThread("zixflow-sends")
    client = ZixflowClient(
        sends.build(lambda: open_session(settings.send_concurrency)),
        base_url=settings.base_url,
        api_key=require_api_key(settings),
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )
    dead_letters = DeadLetters(store, settings.queue)
    records = JobRecords(async_redis(settings), settings, worker_id())
    courier = Courier(records, client, dead_letters, settings, stopping)
    return Runtime(settings, sends, courier, dead_letters, Scheduler(store, settings))
