"""The Celery app: reliability settings, and the hooks that start and stop a worker cleanly."""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery, signals

from worker.errors import ConfigurationError
from worker.runtime import built_runtime, require_api_key, runtime, stopping
from worker.settings import worker_settings

log = logging.getLogger(__name__)
settings = worker_settings()

app = Celery("zixflow_queue", include=["worker.tasks"])
app.conf.update(
    broker_url=settings.effective_broker_url,
    # kombu's Redis transport with one fix: it survives Redis going away (see worker.broker).
    broker_transport="worker.broker:Transport"
    if settings.effective_broker_url.startswith("redis://")
    else None,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # outlive any Redis restart
    broker_transport_options={
        # A killed worker's unacknowledged messages come back after this many seconds. A live
        # worker marks its own as fresh at every restore sweep (worker.broker), and retries
        # wait on our own schedule, never in the unacked set, so the timeout can be short
        # enough for a dead worker's jobs to be taken over within two minutes.
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 30,  # a worker killed mid-restore must not block restores long
        "health_check_interval": 10,
    },
    task_default_queue=settings.queue,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,  # ack after the send is recorded, never before
    task_reject_on_worker_lost=True,
    # A task that fails on an unexpected error is not acked; one that loses Redis mid-task
    # puts its message back itself (worker.tasks). Per-job claims make a rerun safe.
    task_acks_on_failure_or_timeout=False,
    # Threads, not processes: a delivery task only hands its jobs to the worker's event loop,
    # where up to ZQ_SEND_CONCURRENCY sends are in flight at once, and waits for them.
    # Scale across cores with more workers.
    worker_pool="threads",
    worker_concurrency=settings.concurrency,
    worker_prefetch_multiplier=1,  # prefetch no more than the threads can start
    worker_consumer="worker.consumer:DeadLetteringConsumer",
    worker_cancel_long_running_tasks_on_connection_loss=False,
)


@signals.worker_init.connect
def _refuse_without_api_key(**_: Any) -> None:
    try:
        require_api_key(settings)
    except ConfigurationError as error:
        log.critical("%s", error)
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


@signals.worker_ready.connect
def _start_scheduler(**_: Any) -> None:
    runtime().scheduler.start()


@signals.worker_shutting_down.connect
def _stop_sending(**_: Any) -> None:
    stopping.set()
    if built := built_runtime():
        built.stop_sending()


@signals.worker_shutdown.connect
def _close(**_: Any) -> None:
    if built := built_runtime():  # nothing to close if the worker never got that far
        built.close()
