"""The parts one worker process shares between its tasks, built once on first use."""

from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from producer.deadletters import DeadLetters
from producer.store import Store
from worker.delivery import Courier
from worker.errors import ConfigurationError
from worker.jobs import JobRecords
from worker.scheduler import Scheduler
from worker.settings import WorkerSettings, worker_settings
from worker.zixflow import ZixflowClient, make_session

stopping = threading.Event()
"""Set when the worker begins a warm shutdown: no new sends start after it."""


@dataclass(frozen=True)
class Runtime:
    """Store, courier, dead letters and scheduler of this worker process."""

    settings: WorkerSettings
    store: Store
    courier: Courier
    dead_letters: DeadLetters
    scheduler: Scheduler


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


@cache
def runtime() -> Runtime:
    """Build this process's runtime from the environment's settings."""
    settings = worker_settings()
    store = Store.connect(settings, threads=settings.concurrency + settings.send_concurrency)
    client = ZixflowClient(
        make_session(settings.send_concurrency),
        base_url=settings.base_url,
        api_key=require_api_key(settings),
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )
    dead_letters = DeadLetters(store, settings.queue)
    courier = Courier(
        JobRecords(store.records, settings, worker_id()),
        client,
        dead_letters,
        settings,
        ThreadPoolExecutor(settings.send_concurrency, thread_name_prefix="zixflow-send"),
        stopping,
    )
    return Runtime(settings, store, courier, dead_letters, Scheduler(store, settings))
