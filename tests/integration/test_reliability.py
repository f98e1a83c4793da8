"""Breaking things for real: killed workers, Redis restarts and memory, faults, limits, poison."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis

from producer import JobState, Producer, RedisUnavailable
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
        [sys.executable, "-m", "zixflow_queue.sandbox", "--port", str(port),
         "--api-key", SANDBOX_KEY],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = SandboxClient(f"http://127.0.0.1:{port}")
    wait_until(client.healthy, timeout=30, what="the sandbox")
    pipeline_env["ZIXFLOW_BASE_URL"] = client.url
    yield client
    process.terminate()
    process.wait(timeout=10)


def sent_twice_without_a_reclaim(producer: Producer, sandbox: SandboxClient) -> list[str]:
    """Jobs the sandbox accepted more than once whose record does not own up to it."""
    accepted = Counter(r["job_id"] for r in sandbox.requests() if r["answer"] == "ok")
    twice = [job_id for job_id, count in accepted.items() if count > 1]
    statuses = producer.get_statuses(twice)
    return [job for job, s in zip(twice, statuses, strict=True) if s is None or not s.reclaims]


class SteadyStream:
    """A producer thread enqueuing 50 single jobs and a batch of 50 every second."""

    def __init__(self, producer: Producer, seconds: int) -> None:
        self.job_ids: list[str] = []
        self._producer = producer
        self._thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self._thread.start()

    def _run(self, seconds: int) -> None:
        for second in range(seconds):
            started = time.monotonic()
            first = second * 100
            self.job_ids += [self._producer.enqueue(m) for m in wire_messages(50, first=first)]
            self.job_ids += self._producer.enqueue_many(wire_messages(50, first=first + 50))
            time.sleep(max(0.0, 1 - (time.monotonic() - started)))  # the stream's pace

    def join(self) -> list[str]:
        self._thread.join()
        return self.job_ids


@pytest.mark.slow
@pytest.mark.parametrize("run", [1, 2, 3])
def test_a_worker_killed_every_second_strands_no_job(
    run: int,
    producer_for: Callable[..., Producer],
    start_worker: Start,
    remote_sandbox: SandboxClient,
    pipeline_env: dict[str, str],
) -> None:
    """Default reliability settings; three workers; one SIGKILLed every second for 30 s."""
    remote_sandbox.configure(FaultPlan(latency_ms=100))
    producer = producer_for()
    workers = [start_worker() for _ in range(3)]
    stream = SteadyStream(producer, seconds=30)
    kills = 0
    while stream._thread.is_alive():
        time.sleep(1)  # the rhythm of the chaos, not a wait for a condition
        workers[kills % 3].kill()
        workers[kills % 3] = start_worker(ready=False)
        kills += 1
    last_kill = time.monotonic()
    job_ids = stream.join()
    wait_until(lambda: all_final(producer, job_ids), timeout=150, what="every job to finish")
    finished_after = time.monotonic() - last_kill

    statuses = producer.get_statuses(job_ids)
    reclaimed = sum(1 for s in statuses if s is not None and s.reclaims)
    stats = remote_sandbox.stats()
    print(f"\nkill run {run}: {kills} kills, {len(job_ids)} jobs, every one final "
          f"{finished_after:.0f}s after the last kill, {reclaimed} taken over mid-send, "
          f"{stats['duplicates']} sent twice, {states(producer, job_ids)}")  # fmt: skip
    assert states(producer, job_ids) == {"sent": 3000}
    assert {r["job_id"] for r in remote_sandbox.requests()} >= set(job_ids)
    assert finished_after < 120
    assert sent_twice_without_a_reclaim(producer, remote_sandbox) == []  # every one counted


def test_a_slow_answer_is_never_sent_again_by_another_worker(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    """Answers slower than the heartbeat timeout: the live worker's heartbeat keeps its jobs."""
    remote_sandbox.configure(FaultPlan(latency_ms=7000))
    env = {"ZQ_HEARTBEAT_TIMEOUT": "5", "ZQ_READ_TIMEOUT": "20"}
    start_worker(env=env)
    start_worker(env=env)
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(20))
    wait_until(lambda: all_final(producer, job_ids), timeout=60, what="every job to finish")
    assert states(producer, job_ids) == {"sent": 20}
    assert Counter(r["job_id"] for r in remote_sandbox.requests()) == dict.fromkeys(job_ids, 1)


def test_poison_is_dead_lettered_and_the_worker_carries_on(
    producer_for: Callable[..., Producer], start_worker: Start, real_redis: redis.Redis
) -> None:
    worker = start_worker()
    producer = producer_for()
    queue = producer.settings.queue
    good = json.loads(EnvelopeBuilder(queue).build())

    def envelope(**changes: Any) -> str:
        message = copy.deepcopy(good)
        message.update(changes.pop("top", {}))
        message["headers"].update(changes)
        return json.dumps(message)

    bad_body = base64.b64encode(b"{not json").decode()
    with_args = base64.b64encode(json.dumps([[["job"]], {"x": 1}, {}]).encode()).decode()
    poison = [
        envelope(top={"body": bad_body}),
        envelope(task="no.such.task"),
        envelope(task="celery.chord_unlock"),  # Celery's own: it would retry every second
        envelope(top={"body": with_args}),
        envelope(top={"body": base64.b64encode(b'{"not": "a request"}').decode()}),
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
    job_id = producer.enqueue(wire_message())
    real_redis.lpush(producer.keys.ready, f"{job_id}:history", "../../etc")  # crafted ids
    letters = DeadLetters(producer.store, producer.settings)
    wait_until(lambda: len(letters.entries()) >= 12, timeout=30, what="twelve dead letters")
    reasons = " | ".join(letter.reason for letter in letters.entries())
    assert "undecodable" in reasons or "invalid" in reasons
    assert "a task this worker does not run: 'no.such.task'" in reasons
    assert "a task this worker does not run: 'celery.chord_unlock'" in reasons
    assert "malformed delivery task" in reasons
    assert "queue item is not JSON" in reasons
    assert "not a job id" in reasons
    for problem in ("no properties object", "no delivery tag", "body is not valid base64"):
        assert problem in reasons
    assert "{not json" in {letter.raw for letter in letters.entries()}
    wait_until(lambda: all_final(producer, [job_id]), timeout=30, what="a good job after poison")
    assert worker.process.poll() is None


def test_a_job_left_sending_by_a_dead_worker_is_taken_over(
    producer_for: Callable[..., Producer], start_worker: Start, real_redis: redis.Redis
) -> None:
    producer = producer_for()
    job_id = producer.enqueue(wire_message())
    keys = producer.keys
    real_redis.delete(keys.ready)  # a worker took it, claimed it, and died mid-send
    real_redis.hset(keys.job(job_id), mapping={"state": "sending", "attempts": 1,
                                               "worker": "dead:1"})  # fmt: skip
    real_redis.zadd(keys.held("dead:1"), {job_id: time.time() - 60})
    real_redis.zadd(keys.workers, {"dead:1": time.time() - 1})
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
    """The default 80/s per phone id, measured where it counts: at the receiving end."""
    env = {"ZQ_PHONE_RATE": "80", "ZQ_RECIPIENT_INTERVAL": "1"}
    for _ in range(3):
        start_worker(env=env)
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(600) + [wire_message(to="919811111111")] * 5)
    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="every job to finish")

    arrivals = sorted(r["t"] for r in remote_sandbox.requests())
    busiest = max(sum(1 for t in arrivals[i:] if t < start + 1) for i, start in enumerate(arrivals))
    paced = sorted(r["t"] for r in remote_sandbox.requests() if r["to"] == "919811111111")
    gaps = [later - earlier for earlier, later in pairwise(paced)]
    print(f"\nlimits: busiest second {busiest} sends (limit 80), recipient gaps {gaps}")
    assert busiest <= 80
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
    assert remote_sandbox.stats()["duplicates"] == 0


@pytest.mark.slow
def test_sends_outlasting_the_grace_period_are_taken_over(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    remote_sandbox.configure(FaultPlan(latency_ms=5000))
    producer = producer_for()
    job_ids = producer.enqueue_many(wire_messages(300))
    env = {"ZQ_SEND_CONCURRENCY": "8", "ZQ_MAX_IN_FLIGHT": "8", "ZQ_SHUTDOWN_GRACE": "0.2"}
    worker = start_worker(env=env)
    wait_until(lambda: producer.get_statuses(job_ids).count(None) == 0 and sum(
        s is not None and s.state == "sending" for s in producer.get_statuses(job_ids)) == 8,
        timeout=30, what="eight sends in flight")  # fmt: skip
    started = time.monotonic()
    assert worker.terminate(timeout=60) == 0
    stopped_after = time.monotonic() - started
    start_worker(env={"ZQ_MAX_IN_FLIGHT": "300", "ZQ_SEND_CONCURRENCY": "300"})
    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="every job to finish")
    statuses = [s for s in producer.get_statuses(job_ids) if s is not None]
    reclaimed = sum(1 for s in statuses if s.reclaims)
    print(f"\ngrace ran out: stopped in {stopped_after:.1f}s, {reclaimed} jobs taken over, "
          f"{states(producer, job_ids)}")  # fmt: skip
    assert states(producer, job_ids) == {"sent": 300}
    assert stopped_after < 4  # it did not wait for the 5 s answers
    assert reclaimed == 8  # only the sends in flight were left behind


def test_replay_keeps_the_jobs_history(
    producer_for: Callable[..., Producer], start_worker: Start, remote_sandbox: SandboxClient
) -> None:
    remote_sandbox.configure(FaultPlan(script={"919800000009": ["window"]}))
    start_worker()
    producer = producer_for()
    job_id = producer.enqueue(wire_message(to="919800000009"))
    wait_until(lambda: all_final(producer, [job_id]), timeout=30, what="the job to fail")
    letters = DeadLetters(producer.store, producer.settings)
    assert letters.replay([job_id]) == [job_id]
    wait_until(
        lambda: (s := producer.get_status(job_id)) is not None and s.state == "sent",
        timeout=30,
        what="the replayed job to be sent",
    )
    status = producer.get_status(job_id)
    assert status is not None and (status.attempts, status.replays) == (2, 1)
    assert letters.get(job_id) is None
    assert letters.replay([job_id]) == []  # sent: never replayed again


RETRY_AFTER = 5.0


def test_deployments_sharing_a_database_never_touch_each_others_jobs(
    producer_for: Callable[..., Producer],
    start_worker: Start,
    remote_sandbox: SandboxClient,
    pipeline_env: dict[str, str],
) -> None:
    """beta's retry backlog and scheduled jobs wait while alpha's worker runs beside them."""
    alpha = producer_for()
    beta = producer_for(queue="beta-" + pipeline_env["ZQ_QUEUE"])
    beta_env = {"ZQ_QUEUE": beta.settings.queue}
    throttled = {str(message["to"]): ["throttle429"] for message in wire_messages(25, first=500)}
    # Retry-After, not a jittered backoff: no retry is due before beta's worker is killed.
    remote_sandbox.configure(FaultPlan(script=throttled, retry_after=RETRY_AFTER))
    retrying = beta.enqueue_many(wire_messages(25, first=500))
    beta_worker = start_worker(env=beta_env)
    wait_until(lambda: states(beta, retrying) == {"retrying": 25}, timeout=30, what="retries")
    beta_worker.kill()
    due = time.time() + RETRY_AFTER  # the retries' due time is before this
    scheduled = beta.enqueue_many(wire_messages(25, first=600))  # beta's next batch waits
    remote_sandbox.reset()

    start_worker()  # alpha's worker, on alpha's queue
    alpha_jobs = alpha.enqueue_many(wire_messages(20))
    wait_until(lambda: all_final(alpha, alpha_jobs) and time.time() > due + 3, timeout=60,
               what="alpha's jobs, and beta's due times well past")  # fmt: skip

    assert states(beta, retrying) == {"retrying": 25}
    assert states(beta, scheduled) == {"queued": 25}
    assert {r["job_id"] for r in remote_sandbox.requests()} == set(alpha_jobs)
    assert alpha.get_statuses(retrying) == [None] * 25  # alpha cannot even see them
    start_worker(env=beta_env)
    wait_until(lambda: all_final(beta, retrying + scheduled), timeout=60, what="beta's jobs")
    assert states(beta, retrying + scheduled) == {"sent": 50}


class PrivateRedis:
    """A redis-server of the test's own, with append-only persistence, that can be restarted."""

    def __init__(self, binary: str, data_dir: Path, *options: str) -> None:
        self._argv = [binary, "--port", str(free_port()), "--bind", "127.0.0.1",
                      "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                      "--dir", str(data_dir), *options]  # fmt: skip
        self.url = f"redis://127.0.0.1:{self._argv[2]}/0"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        """Start the server (again) and wait until it answers."""
        self.processes.append(subprocess.Popen(self._argv, stdout=subprocess.DEVNULL))
        wait_until(lambda: redis_answers(self.url), timeout=20, what="the private Redis")
        return self.processes[-1]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[..., PrivateRedis]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    servers: list[PrivateRedis] = []

    def make(*options: str) -> PrivateRedis:
        servers.append(PrivateRedis(binary, tmp_path, *options))
        return servers[-1]

    yield make
    for server in servers:
        for process in server.processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.mark.slow
def test_redis_restart_loses_no_job(
    private_redis: Callable[..., PrivateRedis],
    start_worker: Start,
    remote_sandbox: SandboxClient,
    pipeline_env: dict[str, str],
) -> None:
    redis_server = private_redis()
    server = redis_server.start()
    pipeline_env["REDIS_URL"] = redis_server.url
    remote_sandbox.configure(FaultPlan(latency_ms=20))
    settings = ProducerSettings(redis_url=redis_server.url, queue=pipeline_env["ZQ_QUEUE"],
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
    redis_server.start()
    job_ids += producer.enqueue_many(wire_messages(1000, first=1000))
    wait_until(lambda: all_final(producer, job_ids), timeout=240, what="every job to finish")
    print(f"\nredis restart: {states(producer, job_ids)}, sandbox {remote_sandbox.stats()}")
    assert states(producer, job_ids) == {"sent": 2000}


def test_redis_out_of_memory_is_ridden_out(
    private_redis: Callable[..., PrivateRedis],
    start_worker: Start,
    remote_sandbox: SandboxClient,
    pipeline_env: dict[str, str],
) -> None:
    """noeviction, as docker-compose runs Redis: a full Redis refuses writes for a while."""
    redis_server = private_redis("--maxmemory", "30mb", "--maxmemory-policy", "noeviction")
    redis_server.start()
    pipeline_env["REDIS_URL"] = redis_server.url
    settings = ProducerSettings(redis_url=redis_server.url, queue=pipeline_env["ZQ_QUEUE"])
    producer = Producer(settings, Store.connect(settings))
    worker = start_worker()
    soon = time.time() + 2
    scheduled = producer.enqueue_many([wire_message(to=f"9198{n:08d}") for n in range(20)])
    later = [producer.enqueue(m, send_at=soon) for m in wire_messages(20, first=100)]
    filler = redis.Redis.from_url(redis_server.url)
    chunk = b"x" * 1_000_000
    with pytest.raises(redis.OutOfMemoryError):
        for index in range(100):  # fill it up until it refuses
            filler.set(f"filler:{index}", chunk)
    full_since = time.monotonic()
    wait_until(lambda: time.monotonic() - full_since > 5, what="five seconds out of memory")
    assert worker.process.poll() is None
    filler.delete(*(f"filler:{index}" for index in range(100)))
    job_ids = scheduled + later
    wait_until(lambda: all_final(producer, job_ids), timeout=60, what="every job to finish")
    assert states(producer, job_ids) == {"sent": 40}
    assert worker.process.poll() is None
