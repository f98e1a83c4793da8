"""The demo from start to end: start the services, enqueue a batch, watch it finish, summarise."""

from __future__ import annotations

import base64
import contextlib
import secrets
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import redis

from producer.enqueue import Producer
from producer.settings import ProducerSettings
from producer.status import JobStatus
from producer.store import Store
from zixflow_queue.cli.output import note
from zixflow_queue.demo.processes import DemoError
from zixflow_queue.demo.receiver import EventReceiver
from zixflow_queue.demo.report import ProgressBar, summary
from zixflow_queue.demo.services import (
    Replies,
    http_service,
    real_api,
    redis_service,
    worker_processes,
    zixflow_service,
)
from zixflow_queue.demo.settle import await_replies
from zixflow_queue.namespace import remove_deployment
from zixflow_queue.sandbox.client import SandboxClient

RECORD_TTL = 3600
"""Seconds the demo's job records are kept: long enough to look at, short enough to vanish."""

WORKER_SETTINGS = {
    "ZQ_BACKOFF_BASE": "0.2",  # retries within seconds, so the demo ends soon
    "ZQ_BACKOFF_CAP": "2",
    "ZQ_RECORD_TTL": str(RECORD_TTL),
    "CELERY_BROKER_URL": "",  # the demo's Redis is the broker, whatever the shell says
}
SANDBOX_SETTINGS = {"ZQ_RECIPIENT_INTERVAL": "0"}
"""A retry goes to the same recipient: the sandbox needs none of WhatsApp's 6 s pacing."""
WEBHOOK_NOTE = (
    "Replies: to see them, run `zixflow-queue serve` where Zixflow can reach it (with "
    "ZQ_ZIXFLOW_WEBHOOK_TOKEN set), and in Zixflow's webhook settings send "
    "incoming.whatsapp.message events to https://<host>/v1/zixflow/events with a custom header "
    "X-Zixflow-Token: <that token>"
)


@dataclass(frozen=True)
class Recipient:
    """Who the messages go to, when they go to the real API."""

    to: str
    phone_id: str


def run_demo(count: int, workers: int, recipient: Recipient | None = None) -> int:
    """Start everything, send `count` messages, print the summary; stop everything, always."""
    if real_api() and recipient is None:
        print("error: with the real Zixflow API (ZIXFLOW_API_KEY and ZIXFLOW_BASE_URL are set), "
              "name a recipient of your own: --to and --phone-id", file=sys.stderr)  # fmt: skip
        return 2
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(count, workers, recipient)
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a SIGTERM stops the demo as Ctrl-C does: children first


def _run(count: int, workers: int, recipient: Recipient | None) -> int:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zq-demo-")))
        server = stack.enter_context(redis_service(workdir))
        replies = None if real_api() else Replies.new()
        zixflow = stack.enter_context(zixflow_service(workdir, replies))
        queue = f"demo-{secrets.token_hex(4)}"
        namespace = f"zq:{queue}"  # its own, whatever ZQ_PREFIX the shell has
        settings = ProducerSettings(redis_url=server.url, broker_url=None, queue=queue,
                                    prefix=namespace, record_ttl=RECORD_TTL)  # fmt: skip
        producer = Producer(settings, Store.connect(settings))
        if not server.private:
            stack.callback(_tidy, producer)
        env = {"REDIS_URL": server.url, "ZQ_QUEUE": queue, "ZQ_PREFIX": namespace,
               **WORKER_SETTINGS}  # fmt: skip
        receiver = None
        if replies is not None:  # the sandbox's replies go to the service, events to the app
            receiver = stack.enter_context(EventReceiver(_webhook_secret()))
            env |= receiver.environment()
            stack.enter_context(http_service(replies, env, workdir))
        else:
            note(WEBHOOK_NOTE)
        env |= {**zixflow.environment(), **(SANDBOX_SETTINGS if zixflow.sandbox else {})}
        stack.enter_context(worker_processes(workers, env, workdir))
        started = time.time()
        job_ids = producer.enqueue_many(demo_messages(count, recipient))
        note(f"Enqueued {count} messages; every tenth asks for its submission status.")
        statuses = _watch(producer, job_ids)
        if receiver is not None:
            sandbox = SandboxClient(zixflow.base_url)
            statuses = await_replies(producer, job_ids, sandbox, receiver)
        events = receiver.counts() if receiver is not None else None
        print(summary(statuses, started, count, events), flush=True)
        if receiver is not None:
            _show_event(receiver)
        note("Stopping the workers and everything the demo started...")
    return 0 if sum(status.final for status in statuses) == count else 1


def _webhook_secret() -> str:
    """A fresh Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _show_event(receiver: EventReceiver) -> None:
    """One status event as the app received it, a reply's if one came."""
    example = receiver.example("message.replied")
    if example is not None:
        print(f"\nA status event as the demo's app received it:\n\n{example}", flush=True)


def demo_messages(count: int, recipient: Recipient | None = None) -> list[dict[str, Any]]:
    """Order confirmations: to distinct recipients from four numbers (the sandbox), or all to
    one recipient (the real API)."""
    return [
        {
            "to": recipient.to if recipient else f"9199{n:08d}",
            "phoneId": recipient.phone_id if recipient else f"10654035224292{n % 4}",
            "interactive": {
                "header": {"type": "text", "text": "Your order"},
                "body": {"text": f"Order #{1000 + n} is ready. Deliver tomorrow, 9 to 12?"},
                "footer": {"text": "Reply to choose"},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": f"yes-{n}", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": f"later-{n}", "title": "Another day"}},
                ]},
            },
            "submissionStatus": n % 10 == 0,
        }
        for n in range(count)
    ]  # fmt: skip


def _watch(producer: Producer, job_ids: list[str]) -> list[JobStatus]:
    """Poll every job (one round trip each time) until all are sent or failed, or time is up."""
    deadline = time.monotonic() + 120 + len(job_ids) / 10
    bar = ProgressBar(len(job_ids))
    try:
        while True:
            statuses = [s for s in producer.get_statuses(job_ids) if s is not None]
            bar.update(statuses)
            if all(status.final for status in statuses) or time.monotonic() > deadline:
                return statuses
            time.sleep(0.2)
    finally:
        bar.close()


def _tidy(producer: Producer) -> None:
    """Leave a Redis the demo shares as it was.

    On fresh connections: an interrupt can land while a reply is half read, and a connection
    left so would hand the next call the rest of that reply.
    """
    producer.store.records.connection_pool.disconnect()
    with contextlib.suppress(redis.RedisError):
        remove_deployment(producer.store, producer.settings)
