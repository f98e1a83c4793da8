"""Redis Sentinel: producers, a worker and the service follow a failover, and lose no job.

A master, two replicas and three sentinels (redis-server 7.0) on loopback. A producer enqueues
steadily with ZQ_DURABLE=replica; the master is killed (or frozen, for good) mid-run; sentinel
promotes a replica, and the other replica follows it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from producer import OutcomeUnknown, Producer, StorageError
from producer.settings import ProducerSettings
from producer.store import Store
from tests.integration.servers import SentinelGroup
from tests.support import WorkerProcess, all_final, states, wait_until, wire_message, wire_messages
from zixflow_queue.sandbox import Sandbox
from zixflow_queue.service.app import create_app
from zixflow_queue.service.settings import ServiceSettings

pytestmark = pytest.mark.integration

SOCKET_TIMEOUT = 2.0
DURABLE_TIMEOUT = 1.0
LONGEST_CALL = 2 * SOCKET_TIMEOUT + DURABLE_TIMEOUT + 1.5
"""The longest one enqueue call may take: a connect and a call that each time out, a wait."""


def sentinel_producer(group: SentinelGroup, queue: str) -> Producer:
    settings = ProducerSettings(redis_url=group.url, queue=queue, socket_timeout=SOCKET_TIMEOUT,
                                durable="replica", durable_timeout=DURABLE_TIMEOUT)  # fmt: skip
    return Producer(settings, Store.connect(settings, threads=2))


class SteadyProducer:
    """A web app enqueuing every 20 ms (a batch of 5 every tenth time), each with an
    idempotency key, and retrying with the same key after a StorageError, as apps should."""

    def __init__(self, producer: Producer) -> None:
        self.returned: dict[str, float] = {}
        """Job id → when the enqueue that stored it returned."""
        self.errors: Counter[str] = Counter()
        self.longest = 0.0
        self._producer = producer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """Stop enqueuing; the ids of every job whose enqueue returned."""
        self._stop.set()
        self._thread.join(timeout=LONGEST_CALL + 5)
        assert not self._thread.is_alive(), "an enqueue call hung"
        return self.returned

    def _run(self) -> None:
        number = 0
        while not self._stop.wait(0.02):  # the app's pace
            key = f"steady-{number}"
            while not self._enqueue(number, key) and not self._stop.wait(0.1):
                pass  # the app's pause, then the same call again with the same key
            number += 1

    def _enqueue(self, number: int, key: str) -> bool:
        started = time.monotonic()
        try:
            if number % 10:
                job_ids = [self._producer.enqueue(wire_message(to=f"9197{number:08d}"),
                                                  idempotency_key=key)]  # fmt: skip
            else:
                messages = wire_messages(5, first=50_000_000 + number * 5)
                job_ids = self._producer.enqueue_many(messages, idempotency_key=key)
        except StorageError as error:
            self.errors[type(error).__name__] += 1
            return False
        finally:
            self.longest = max(self.longest, time.monotonic() - started)
        self.returned.update(dict.fromkeys(job_ids, time.time()))
        return True


def wait_for_promotion(group: SentinelGroup, old_port: int) -> float:
    """Block until the sentinels name another master; when that was seen."""
    wait_until(lambda: group.master_port() not in (None, old_port), timeout=30,
               interval=0.02, what="the sentinels to promote the replica")  # fmt: skip
    return time.time()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_a_failover_loses_no_job_whose_enqueue_returned(
    fault: str,
    sentinel_group: SentinelGroup,
    start_worker: Callable[..., WorkerProcess],
    sandbox: Sandbox,
    pipeline_env: dict[str, str],
) -> None:
    """kill: the master's clients see their connections reset. freeze (SIGSTOP): they see
    nothing at all, as when its host is gone; celery#6348 left workers stuck there."""
    group = sentinel_group
    pipeline_env.update(REDIS_URL=group.url, ZQ_SOCKET_TIMEOUT=str(SOCKET_TIMEOUT))
    worker = start_worker()
    producer = sentinel_producer(group, pipeline_env["ZQ_QUEUE"])
    steady = SteadyProducer(producer)
    wait_until(lambda: len(sandbox.requests()) >= 50, timeout=30, what="sends before the fault")

    faulted = time.time()
    if fault == "kill":
        group.master.kill()
    else:
        group.master.signal(signal.SIGSTOP)
    promoted = wait_for_promotion(group, group.master.port)
    wait_until(lambda: sum(t > promoted for t in steady.returned.values()) >= 100, timeout=60,
               what="enqueues on the new master")  # fmt: skip
    returned = steady.stop()

    job_ids = list(returned)
    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="every job to finish")
    requests = sandbox.requests()
    after = min(r["t"] for r in requests if r["t"] > promoted)
    first_new = min(r["t"] for r in requests if returned.get(r["job_id"], 0) > faulted)
    back = min(t for t in returned.values() if t > faulted)
    sends = Counter(r["job_id"] for r in requests if r["answer"] == "ok")
    print(f"\nfailover ({fault}): promoted at +{promoted - faulted:.1f}s; first send after "
          f"promotion at +{after - faulted:.1f}s, first send of a job enqueued after the fault "
          f"at +{first_new - faulted:.1f}s; enqueues returned again from +{back - faulted:.1f}s;"
          f" {len(job_ids)} jobs returned, {states(producer, job_ids)}, "
          f"{sum(n > 1 for n in sends.values())} sent twice; producer errors "
          f"{dict(steady.errors)}, longest call {steady.longest:.1f}s")  # fmt: skip
    assert states(producer, job_ids) == {"sent": len(job_ids)}
    assert set(sends) >= set(job_ids)
    assert steady.longest < LONGEST_CALL
    assert sum(steady.errors.values()) > 0  # the producer did meet the failover
    assert worker.process.poll() is None  # the same worker carried on


def test_a_replay_is_confirmed_on_the_replicas_too(sentinel_group: SentinelGroup) -> None:
    """A retry that finds its jobs stored writes nothing, yet WAIT must cover them: frozen
    replicas, so no confirmation, so OutcomeUnknown (WAIT on a connection whose last write
    was confirmed earlier would say 1 at once)."""
    producer = sentinel_producer(sentinel_group, "zq-test")
    job_id = producer.enqueue(wire_message(), idempotency_key="once")
    for replica in sentinel_group.replicas:
        replica.signal(signal.SIGSTOP)
    try:
        with pytest.raises(OutcomeUnknown, match=r"only 0 confirmed"):
            producer.enqueue(wire_message(), idempotency_key="once")
    finally:
        for replica in sentinel_group.replicas:
            replica.signal(signal.SIGCONT)
    assert producer.enqueue(wire_message(), idempotency_key="once") == job_id


def test_the_service_is_ready_and_enqueues_through_sentinel(
    sentinel_group: SentinelGroup,
) -> None:
    settings = ServiceSettings(redis_url=sentinel_group.url, api_tokens=("token-5e1f",),
                               durable="replica", queue="zq-test")  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        answer = client.post("/v1/messages", json={"message": wire_message()},
                             headers={"Authorization": "Bearer token-5e1f"})  # fmt: skip
    assert answer.status_code == 202, answer.text
    key = settings.keys.job(answer.json()["id"])
    copies = [replica.client().hget(key, "state") for replica in sentinel_group.replicas]
    assert "queued" in copies  # on a replica too: WAIT 1 said so
