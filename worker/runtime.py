"""The parts one worker process shares between its tasks, built once when the worker starts."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cache

import redis.asyncio

from producer.collector import settle_long_running_process
from producer.deadletters import DeadLetters
from producer.errors import ConfigurationError
from producer.store import Store, async_client
from worker.callbacks import CallbackClient
from worker.delivery import Courier
from worker.event_loop import EventLoopThread
from worker.events import EventSender
from worker.jobs import Ending, JobRecords, Wakeups
from worker.limiter import AdaptiveLimit
from worker.maintenance import Maintenance
from worker.settings import WorkerSettings, worker_settings
from worker.zixflow import ZixflowClient, open_session, send_url

log = logging.getLogger(__name__)

stopping = threading.Event()
"""Set when the worker begins a warm shutdown: no new sends start after it."""

WAIT_STEP = 0.5
"""How often a delivery task waiting on its sends looks at whether the worker is stopping."""


@dataclass(frozen=True)
class Runtime:
    """Event loop, courier, upkeep and dead letters of this worker process."""

    settings: WorkerSettings
    loop: EventLoopThread
    records: redis.asyncio.Redis
    courier: Courier
    maintenance: Maintenance
    events: EventSender
    callbacks: CallbackClient
    jobs: JobRecords
    dead_letters: DeadLetters

    def start(self) -> None:
        """Start the upkeep (heartbeat, due jobs, recovery) and the status events' sender."""
        self.loop.submit(self.maintenance.run())
        self.loop.submit(self.events.run())

    def deliver(self) -> dict[str, int]:
        """Take a batch of ready jobs, deliver them on the event loop and wait.

        Once the worker is stopping, the sends in flight get ZQ_SHUTDOWN_GRACE seconds; those
        still going then are abandoned to this worker's held set, which another worker takes
        over once the heartbeat has stopped.
        """
        future = self.loop.submit(self.courier.deliver())
        ends = _wait(future, self.settings.shutdown_grace)
        return {str(ending): count for ending, count in ends.items()}

    def stop_sending(self) -> None:
        """Start no new send: jobs not yet started go back to the ready list."""
        stopping.set()
        self.loop.loop.call_soon_threadsafe(self.courier.stop)
        self.loop.loop.call_soon_threadsafe(self.events.stop)

    def close(self) -> None:
        """Stop the upkeep, abandon sends in flight, and let other workers have what is left."""
        self.loop.loop.call_soon_threadsafe(self.maintenance.stop)
        self.loop.loop.call_soon_threadsafe(self.events.stop)
        self.loop.call(self.courier.close())
        self.loop.call(self.callbacks.close())
        try:
            self.loop.call(self.jobs.leave())
        except Exception as error:  # Redis away: the heartbeat lapses on its own
            log.warning("could not sign off (%s); this worker's jobs are taken over once its "
                        "heartbeat lapses", error)  # fmt: skip
        self.loop.call(self.records.aclose())
        self.loop.stop()


def _wait(future: Future[Counter[Ending]], grace: float) -> Counter[Ending]:
    deadline = float("inf")
    while True:
        try:
            return future.result(timeout=WAIT_STEP)
        except TimeoutError:
            pass
        if stopping.is_set():
            deadline = min(deadline, time.monotonic() + grace)
        if time.monotonic() >= deadline:
            log.warning("sends still in flight at the end of the shutdown grace: abandoned")
            return Counter()


def worker_id() -> str:
    """This process's name in job records and heartbeats: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def check_settings(settings: WorkerSettings) -> str:
    """The Zixflow API key, once every setting a worker sends with is known to work."""
    send_url(settings.base_url)
    if settings.api_key is None or not settings.api_key.get_secret_value():
        raise ConfigurationError(
            "ZIXFLOW_API_KEY is not set: a worker refuses to send without a Zixflow API key"
        )
    if settings.callback_url and settings.webhook_secret is None:
        raise ConfigurationError(
            "ZQ_WEBHOOK_SECRET is not set: status events for ZQ_CALLBACK_URL cannot be signed"
        )
    return settings.api_key.get_secret_value()


def built_runtime() -> Runtime | None:
    """This process's runtime if something has built it already, else None (builds nothing)."""
    return runtime() if runtime.cache_info().currsize else None


@cache
def runtime() -> Runtime:
    """Build this process's runtime from the environment's settings."""
    settings = worker_settings()
    api_key = check_settings(settings)
    store = Store.connect(settings)
    loop = EventLoopThread("zixflow-sends")
    records = async_client(settings, settings.redis_url, pool_size=None)
    broker = None if store.shared else async_client(
        settings, settings.effective_broker_url, pool_size=None
    )  # fmt: skip
    wakeups = Wakeups(settings, broker)
    jobs = JobRecords(records, settings, worker_id(), wakeups)
    client = ZixflowClient(
        loop.build(lambda: open_session(settings.max_in_flight)),
        base_url=settings.base_url,
        api_key=api_key,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )
    limit = AdaptiveLimit(settings.send_concurrency, settings.max_in_flight)
    courier = Courier(jobs, client, limit, settings)
    callbacks = loop.build(lambda: CallbackClient(
        settings.event_timeout, public_only=settings.callback_hosts == "public"
    ))  # fmt: skip
    events = EventSender(records, settings, jobs.worker, callbacks)
    maintenance = Maintenance(records, settings, jobs, events, lambda: courier.known, wakeups)
    built = Runtime(settings, loop, records, courier, maintenance, events, callbacks, jobs,
                    DeadLetters(store, settings))  # fmt: skip
    settle_long_running_process()
    return built
