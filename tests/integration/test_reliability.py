"""Breaking things for real: killed workers, Redis restarts, faults, limits, poison, shutdown."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.typing import EncodableT, FieldT

from producer import JobState, Producer, RedisUnavailable, keys
from producer.deadletters import DeadLetters
from producer.envelope import EnvelopeBuilder
from producer.settings import ProducerSettings
from producer.store import Store
from tests.support import (
    SANDBOX_KEY,
    WorkerProcess,
    all_final,
    states,
    wait_until,
    wire_message,
    wire_messages,
)
from zixflow_queue.demo.processes import free_port
from zixflow_queue.demo.services import redis_answers
from zixflow_queue.sandbox import FaultPlan, SandboxClient

pytestmark = pytest.mark.integration
Start = Callable[..., WorkerProcess]


@pytest.fixture
def remote_sandbox(pipeline_env: dict[str, str]) -> Iterator[SandboxClient]:
    """The sandbox in its own process (heavy runs would starve an in-thread one)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zixflow_queue.sandbox",
            "--port",
            str(port),
            "--api-key",
            SANDBOX_KEY,
        ],
        stderr=subprocess.DEVNULL,
    )
    client = SandboxClient(f"http://127.0.0.1:{port}")
    wait_until(client.healthy, timeout=30, what="the sandbox")
    pipeline_env["ZIXFLOW_BASE_URL"] = client.url
    yield client
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.slow
def test_killed_workers_lose_nothing(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    send_concurrency = 16
    env = {
        "ZQ_VISIBILITY_TIMEOUT": "10",
        "ZQ_CONNECT_TIMEOUT": "1",
        "ZQ_READ_TIMEOUT": "5",
        "ZQ_LEASE_MARGIN": "1",
        "ZQ_CONCURRENCY": "8",
        "ZQ_SEND_CONCURRENCY": str(send_concurrency),
    }
    # Slow answers stretch the run over many kills (3 workers x 16 sends / 0.2 s = 240/s).
    remote_sandbox.configure(FaultPlan(latency_ms=200))
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(5000))
    workers = [start_worker(env=env) for _ in range(3)]
    kills, victim = 0, 0
    deadline = time.monotonic() + 240
    while not all_final(producer, job_ids) and time.monotonic() < deadline:
        time.sleep(2)  # the pace of the chaos, not a wait for a condition
        workers[victim].kill()
        kills += 1
        workers[victim] = start_worker(env=env)
        victim = (victim + 1) % len(workers)
        if kills >= 30:
            break
    last_kill = time.monotonic()
    wait_until(lambda: all_final(producer, job_ids), timeout=240, what="every job to finish")
    recovered_after = time.monotonic() - last_kill

    stats = remote_sandbox.stats()
    received = {r["job_id"] for r in remote_sandbox.requests()}
    print(
        f"\nkill test: {kills} kills, {stats['duplicates']} sent twice, recovered "
        f"{recovered_after:.0f}s after the last kill, {states(producer, job_ids)}"
    )
    assert states(producer, job_ids) == {"sent": 5000}
    assert received == set(job_ids)
    # Only sends in flight when a worker dies can go out twice: at most the send pool.
    assert stats["duplicates"] <= kills * send_concurrency
    assert recovered_after < 120


def test_poison_messages_are_dead_lettered_and_the_worker_carries_on(
    producer_for: Callable[..., Producer], start_worker: Start, real_redis: redis.Redis
) -> None:
    worker = start_worker()
    producer = producer_for()
    queue = producer.settings.queue
    good = json.loads(EnvelopeBuilder(queue).build(["x"]))

    def envelope(**changes: Any) -> str:
        message = copy.deepcopy(good)
        message.update(changes.pop("top", {}))
        message["headers"].update(changes)
        return json.dumps(message)

    bad_body = base64.b64encode(b"{not json").decode()
    wrong_args = base64.b64encode(json.dumps([[42], {"x": 1}, {}]).encode()).decode()
    poison = [
        envelope(top={"body": bad_body}),
        envelope(task="no.such.task"),
        envelope(top={"body": wrong_args}),
        envelope(top={"body": base64.b64encode(b'{"not": "a request"}').decode()}),
        envelope(top={"body": base64.b64encode(b'[[["no-such-job"]], {}, {}]').decode()}),
    ]
    no_tag = json.loads(envelope())
    del no_tag["properties"]["delivery_tag"]
    raw_items = [
        "{not json",
        "[1, 2]",
        json.dumps({"body": "x"}),
        json.dumps(no_tag),
        envelope(top={"body": "not base64!"}),
    ]
    real_redis.lpush(queue, *poison, *raw_items)
    letters = DeadLetters(producer.store, queue)
    wait_until(lambda: len(letters.entries()) >= 10, timeout=30, what="ten dead letters")
    reasons = " | ".join(letter.reason for letter in letters.entries())
    assert "undecodable" in reasons or "invalid" in reasons
    assert "unknown task" in reasons
    assert "malformed delivery task" in reasons
    assert "unknown job no-such-job" in reasons
    assert "queue item is not JSON" in reasons
    for problem in ("no properties object", "no delivery tag", "body is not valid base64"):
        assert problem in reasons
    assert "{not json" in {letter.raw for letter in letters.entries()}

    job_id = producer.enqueue(wire_message())
    wait_until(lambda: all_final(producer, [job_id]), timeout=30, what="a good job after poison")
    assert worker.process.poll() is None


def test_a_job_left_sending_by_a_dead_worker_is_resolved(
    producer_for: Callable[..., Producer], start_worker: Start, real_redis: redis.Redis
) -> None:
    producer = producer_for()
    job_id = producer.enqueue(wire_message())
    real_redis.delete(producer.settings.queue)  # its message was taken by a worker that died
    expired = time.time() - 1
    stuck: dict[FieldT, EncodableT] = {
        "state": "sending",
        "attempts": 1,
        "lease_until": expired,
        "worker": "dead:1",
    }
    real_redis.hset(keys.job(job_id), mapping=stuck)
    real_redis.zadd(keys.LEASES, {job_id: expired})
    start_worker()
    wait_until(lambda: all_final(producer, [job_id]), timeout=30, what="the stuck job to finish")
    status = producer.get_status(job_id)
    assert status is not None
    assert (status.state, status.reclaims, status.attempts) == (JobState.SENT, 1, 2)


def test_fault_mix_ends_every_job_right(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    retry_after = 1.0
    rates = {"error500": 0.2, "throttle429": 0.1, "drop": 0.05, "window": 0.05}
    remote_sandbox.configure(FaultPlan(seed=3, rates=rates, retry_after=retry_after))
    env = {"ZQ_MAX_ATTEMPTS": "12"}
    start_worker(env=env)
    start_worker(env=env)
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(300))
    wait_until(lambda: all_final(producer, job_ids), timeout=180, what="every job to finish")

    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for request in remote_sandbox.requests():
        by_job[request["job_id"]].append(request)
    too_soon = 0
    for status in producer.get_statuses(job_ids):
        assert status is not None
        answers = [r["answer"] for r in by_job[status.job_id]]
        if status.state == "failed":
            assert answers[-1] == "window" and answers.count("window") == 1, answers
            assert status.error is not None and "131047" in status.error
        else:
            assert answers[-1] == "ok" and "window" not in answers, answers
        for earlier, later in pairwise(by_job[status.job_id]):
            if earlier["answer"] == "throttle429":
                too_soon += later["t"] - earlier["t"] < retry_after
    print(f"\nfault mix: {states(producer, job_ids)}, {remote_sandbox.stats()['answers']}")
    assert too_soon == 0


def test_phone_rate_and_recipient_pace_hold_across_workers(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    rate = 50
    env = {"ZQ_PHONE_RATE": str(rate), "ZQ_RECIPIENT_INTERVAL": "1"}
    for _ in range(3):
        start_worker(env=env)
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(300) + [wire_message(to="919811111111")] * 5)
    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="every job to finish")

    arrivals = sorted(r["t"] for r in remote_sandbox.requests())
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1) for start in arrivals)
    paced = sorted(r["t"] for r in remote_sandbox.requests() if r["to"] == "919811111111")
    gaps = [later - earlier for earlier, later in pairwise(paced)]
    print(f"\nlimits: busiest second {busiest} sends (limit {rate}), recipient gaps {gaps}")
    assert busiest <= rate * 1.1
    assert len(paced) == 5 and min(gaps) >= 0.95


def test_sigterm_loses_nothing(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    remote_sandbox.configure(FaultPlan(latency_ms=50))
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(1000))
    worker = start_worker(env={"ZQ_SHUTDOWN_GRACE": "10"})
    wait_until(lambda: remote_sandbox.stats()["requests"] > 100, timeout=30, what="sends")
    started = time.monotonic()
    assert worker.terminate(timeout=60) == 0
    stopped_after = time.monotonic() - started
    start_worker()
    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="every job to finish")
    print(f"\nshutdown: stopped in {stopped_after:.1f}s, {states(producer, job_ids)}")
    assert states(producer, job_ids) == {"sent": 1000}
    assert stopped_after < 30


@pytest.mark.slow
def test_sends_outlasting_the_grace_period_are_left_to_their_claims(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    remote_sandbox.configure(FaultPlan(latency_ms=5000))
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(300))
    # Claims of 10 s (connect + read + margin), so the abandoned sends are taken over soon.
    short_claims = {"ZQ_CONNECT_TIMEOUT": "1", "ZQ_READ_TIMEOUT": "8", "ZQ_LEASE_MARGIN": "0.5"}
    worker = start_worker(
        env={**short_claims, "ZQ_SEND_CONCURRENCY": "8", "ZQ_SHUTDOWN_GRACE": "0.2"}
    )
    wait_until(lambda: remote_sandbox.stats()["requests"] >= 8, timeout=30, what="sends")
    started = time.monotonic()
    assert worker.terminate(timeout=60) == 0
    stopped_after = time.monotonic() - started
    start_worker(env={**short_claims, "ZQ_SEND_CONCURRENCY": "300"})
    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="every job to finish")
    statuses = [s for s in producer.get_statuses(job_ids) if s is not None]
    reclaimed = sum(1 for s in statuses if s.reclaims)
    print(f"\ngrace ran out: stopped in {stopped_after:.1f}s, {reclaimed} jobs taken over, "
          f"{states(producer, job_ids)}")  # fmt: skip
    assert states(producer, job_ids) == {"sent": 300}
    assert stopped_after < 4  # it did not wait for the 5 s answers
    assert reclaimed == 8  # only the sends in flight were left to their claims


@pytest.mark.slow
def test_a_task_outlasting_the_visibility_timeout_is_not_handed_out_again(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    remote_sandbox.configure(FaultPlan(latency_ms=1000))
    producer = producer_for()
    # One delivery task of 40 jobs, two at a time, 1 s each: 20 s against a 10 s timeout.
    job_ids = producer.enqueue_many(wire_messages(40))
    worker = start_worker(env={"ZQ_VISIBILITY_TIMEOUT": "10", "ZQ_SEND_CONCURRENCY": "2"})
    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="every job to finish")
    received = worker.log_text().count("] received")
    print(f"\nvisibility: a 20 s task under a 10 s timeout was received {received}x")
    assert states(producer, job_ids) == {"sent": 40}
    assert received == 1  # never restored to the queue while it ran


def test_replay_keeps_the_jobs_history(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    remote_sandbox.configure(FaultPlan(script={"919800000009": ["window"]}))
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(to="919800000009"))
    wait_until(lambda: all_final(producer, [job_id]), timeout=30, what="the job to fail")
    letters = DeadLetters(producer.store, producer.settings.queue)
    assert letters.replay([job_id]) == [job_id]
    wait_until(
        lambda: (s := producer.get_status(job_id)) is not None and s.state == "sent",
        timeout=30,
        what="the replayed job to be sent",
    )
    status = producer.get_status(job_id)
    assert status is not None and (status.attempts, status.replays) == (2, 1)
    assert letters.get(job_id) is None


class PrivateRedis:
    """A redis-server of the test's own, with append-only persistence, that can be restarted."""

    def __init__(self, binary: str, data_dir: Path) -> None:
        self._argv = [binary, "--port", str(free_port()), "--bind", "127.0.0.1",
                      "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                      "--dir", str(data_dir)]  # fmt: skip
        self.url = f"redis://127.0.0.1:{self._argv[2]}/0"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        """Start the server (again) and wait until it answers."""
        self.processes.append(subprocess.Popen(self._argv, stdout=subprocess.DEVNULL))
        wait_until(lambda: redis_answers(self.url), timeout=20, what="the private Redis")
        return self.processes[-1]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(binary, tmp_path)
    yield server
    for process in server.processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_redis_restart_loses_no_job(
    private_redis: PrivateRedis,
    start_worker: Start,
    remote_sandbox: SandboxClient,
    pipeline_env: dict[str, str],
) -> None:
    server = private_redis.start()
    pipeline_env["REDIS_URL"] = private_redis.url
    # kombu loses a message it had just popped when Redis dies; the sweep republishes it.
    pipeline_env["ZQ_STALE_AFTER"] = "20"
    remote_sandbox.configure(FaultPlan(latency_ms=20))
    settings = ProducerSettings(redis_url=private_redis.url, queue=pipeline_env["ZQ_QUEUE"],
                                socket_timeout=1.0)  # fmt: skip
    producer = Producer(settings, Store.connect(settings))
    start_worker()
    start_worker()
    job_ids = producer.enqueue_many(wire_messages(1000))
    wait_until(lambda: remote_sandbox.stats()["requests"] > 200, timeout=60, what="sends")
    server.terminate()
    server.wait(timeout=20)
    with pytest.raises(RedisUnavailable, match="Redis is unreachable"):
        producer.enqueue(wire_message())
    private_redis.start()
    job_ids += producer.enqueue_many(wire_messages(1000, first=1000))
    wait_until(lambda: all_final(producer, job_ids), timeout=240, what="every job to finish")
    print(f"\nredis restart: {states(producer, job_ids)}, sandbox {remote_sandbox.stats()}")
    assert states(producer, job_ids) == {"sent": 2000}
