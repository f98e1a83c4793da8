"""The Celery app: its settings, and the hooks that start and stop a worker cleanly.

Delivery tasks are wake-ups: each takes a batch of ready jobs off the deployment's ready list
in Redis, where jobs wait with their records, and every job a worker takes sits in its held
set until it is finished or given back. So a task message carries no job and is acknowledged
as it starts: a worker killed at any moment loses no job (another worker takes its held set
over once its heartbeat lapses), and a lost wake-up is replaced within seconds.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery, signals

from producer.errors import ConfigurationError
from producer.keys import celery_exchanges
from producer.logs import configure_handlers
from worker.broker import failover_strategy, sentinel_options, transport_name
from worker.runtime import built_runtime, check_settings, runtime, stopping
from worker.settings import worker_settings

log = logging.getLogger(__name__)


def _settings_or_exit() -> Any:
    try:
        return worker_settings()
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


settings = _settings_or_exit()
keys = settings.keys

app = Celery("zixflow_queue", include=["worker.tasks"])
app.conf.update(
    broker_url=settings.effective_broker_url,
    # kombu's Redis transport, made to survive Redis going away (see worker.broker).
    broker_transport=transport_name(settings.effective_broker_url),
    broker_failover_strategy=failover_strategy(settings.effective_broker_url),
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # outlive any Redis restart
    broker_transport_options={
        # kombu's bookkeeping of unacknowledged messages, kept in this deployment's namespace.
        "unacked_key": keys.unacked,
        "unacked_index_key": f"{keys.unacked}_index",
        "unacked_mutex_key": f"{keys.unacked}_mutex",
        "health_check_interval": 10,
        **sentinel_options(settings),
    },
    task_default_queue=settings.queue,
    # Remote control and task events of this deployment only: other deployments may share
    # the Redis database, and `celery inspect` or Flower must not see their workers.
    control_exchange=celery_exchanges(settings.queue)["control"],
    event_exchange=celery_exchanges(settings.queue)["events"],
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    # Threads, not processes: a delivery task only hands its jobs to the worker's event loop,
    # where many sends are in flight at once, and waits for them. Scale with more workers.
    worker_pool="threads",
    worker_concurrency=settings.concurrency,
    worker_prefetch_multiplier=1,  # prefetch no more than the threads can start
    worker_consumer="worker.consumer:DeadLetteringConsumer",
    worker_cancel_long_running_tasks_on_connection_loss=False,
)


@signals.after_setup_logger.connect
def _log_format(logger: logging.Logger, **_: Any) -> None:
    configure_handlers(logger.handlers, settings.log_format)  # Celery's own lines too


@signals.after_setup_task_logger.connect
def _task_log_format(logger: logging.Logger, **_: Any) -> None:
    configure_handlers(logger.handlers, settings.log_format)


@signals.worker_init.connect
def _refuse_to_start_misconfigured(**_: Any) -> None:
    try:
        check_settings(settings)
    except ConfigurationError as error:
        log.critical("%s", error)
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


@signals.worker_ready.connect
def _start_upkeep(**_: Any) -> None:
    runtime().start()


@signals.worker_shutting_down.connect
def _stop_sending(**_: Any) -> None:
    stopping.set()
    if built := built_runtime():
        built.stop_sending()


@signals.worker_shutdown.connect
def _close(**_: Any) -> None:
    if built := built_runtime():  # nothing to close if the worker never got that far
        built.close()
