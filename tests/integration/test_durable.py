"""Durable enqueue (ZQ_DURABLE): what is waited for, on which connection, and a Redis crash.

WAITAOF needs Redis 7.2+: these tests run valkey 8 (.ci/get-valkey fetches it; they skip
without it). The system's redis-server 7.0 plays the server that cannot confirm.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from producer import ConfigurationError, OutcomeUnknown, Producer
from producer.durable import Durability
from producer.enqueue import CHUNK, CHUNKS_PER_ROUND_TRIP
from producer.settings import ProducerSettings
from producer.store import Store
from tests.integration.servers import Server
from tests.support import WorkerProcess, all_final, states, wait_until, wire_message, wire_messages
from zixflow_queue.sandbox import Sandbox

AOF = ("--appendonly", "yes", "--appendfsync", "everysec")
START = "zq-test-start"
END = "zq-test-end"


def durable_producer(url: str, durable: str = "aof", **options: Any) -> Producer:
    settings = ProducerSettings(redis_url=url, queue="zq-test", durable=durable, **options)
    return Producer(settings, Store.connect(settings, threads=8))


def commands_by_connection(server: Server, run: Callable[[], object]) -> dict[int, list[str]]:
    """The commands each client connection sent while `run` ran, in order (MONITOR)."""
    marker = server.client()
    with server.client().monitor() as monitor:
        marker.echo(START)
        run()
        marker.echo(END)
        seen: dict[int, list[str]] = defaultdict(list)
        started = False
        while (command := monitor.next_command())["command"] != f"ECHO {END}":
            started = started or command["command"] == f"ECHO {START}"
            if started and command["client_type"] != "lua":  # not the scripts' own calls
                seen[int(command["client_port"])].append(command["command"].split()[0])
    return seen


def writes_then_one_wait(commands: list[str]) -> bool:
    """Whether a connection's commands are script calls, each group followed by one WAITAOF."""
    calls = " ".join(c for c in commands if c in ("EVALSHA", "SET", "WAITAOF"))
    return re.fullmatch(r"((EVALSHA )+(SET )?WAITAOF ?)*", calls) is not None


def test_waitaof_follows_each_round_trip_on_the_connection_that_wrote(
    valkey: Callable[..., Server],
) -> None:
    server = valkey(*AOF)
    producer = durable_producer(server.url)

    def client_of_a_web_app(first: int) -> None:
        for message in wire_messages(20, first=first):
            producer.enqueue(message)
        producer.enqueue_many(wire_messages(2500, first=first + 100))  # 3 calls, 1 round trip
        for _ in range(2):  # the second is a replay: it writes only the idempotency key
            producer.enqueue(wire_message(to=f"9199{first:08d}"), idempotency_key=f"k{first}")

    def burst() -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(client_of_a_web_app, range(0, 40_000, 10_000)))

    seen = commands_by_connection(server, burst)
    waits = sum(commands.count("WAITAOF") for commands in seen.values())
    print(f"\nWAITAOF: {waits} on {len(seen)} connections for at most 4 x 23 round trips")
    # One wait per round trip: each thread's batch and keyed calls make their own, while
    # single enqueues made at the same time by several threads share theirs.
    assert 4 * (1 + 2) < waits <= 4 * (20 + 1 + 2)
    assert sum(commands.count("SET") for commands in seen.values()) == 4  # the replays' marks
    assert all(writes_then_one_wait(commands) for commands in seen.values()), seen
    assert len(seen) > 1  # the threads did use several connections


def test_durable_off_never_waits(valkey: Callable[..., Server]) -> None:
    server = valkey(*AOF)
    producer = durable_producer(server.url, durable="off")
    seen = commands_by_connection(
        server, lambda: [producer.enqueue_many(wire_messages(5)), producer.enqueue(wire_message())]
    )
    assert sum(commands.count("EVALSHA") for commands in seen.values()) >= 2
    assert not any("WAITAOF" in commands or "WAIT" in commands for commands in seen.values())


@pytest.mark.parametrize("server_kind", ["redis 7.0", "append-only file off"])
def test_aof_durability_on_a_redis_that_cannot_wait_says_what_it_needs(
    server_kind: str, redis_url: str, request: pytest.FixtureRequest
) -> None:
    if server_kind == "redis 7.0":
        url = redis_url  # the tests' Redis: no WAITAOF before 7.2
        if redis.Redis.from_url(url).info("server")["redis_version"] >= "7.2":
            pytest.skip("the tests' Redis has WAITAOF")
    else:
        url = request.getfixturevalue("valkey")("--appendonly", "no").url
    producer = durable_producer(url)
    with pytest.raises(ConfigurationError) as refused:
        producer.enqueue(wire_message(), idempotency_key="refused")
    message = str(refused.value)
    print(f"\n{server_kind}: {message}")
    assert message.startswith("ZQ_DURABLE=aof needs Redis 7.2+ (WAITAOF) with appendonly yes;")
    assert "\n" not in message and "not confirmed durable" in message
    assert_stored_once(durable_producer(url, durable="off"), "refused")


def assert_stored_once(producer: Producer, idempotency_key: str) -> None:
    """The job enqueued with this key (and wire_message()) is queued, and only once."""
    job_id = producer.enqueue(wire_message(), idempotency_key=idempotency_key)  # a replay
    assert states(producer, [job_id]) == {"queued": 1}
    assert producer.store.records.lrange(producer.keys.ready, 0, -1) == [job_id]


def test_a_wait_not_acknowledged_in_time_raises_outcome_unknown(redis_url: str) -> None:
    """WAIT 1 on a Redis without replicas: nothing ever acknowledges."""
    producer = durable_producer(redis_url, durable="replica", durable_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as unknown:
        producer.enqueue(wire_message(), idempotency_key="unconfirmed")
    took = time.monotonic() - started
    assert 0.2 <= took < 2
    assert "stored but not copied to 1 replica(s) (only 0 confirmed)" in str(unknown.value)
    assert str(unknown.value).endswith("retry with the same idempotency key")
    assert unknown.value.enqueued == ()
    assert_stored_once(durable_producer(redis_url, durable="off"), "unconfirmed")


def test_a_round_trip_not_confirmed_names_the_jobs_confirmed_before_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = durable_producer(redis_url, durable="replica")
    waits = 0

    def second_wait_times_out(self: Durability, client: redis.Redis, replay: Any) -> None:
        nonlocal waits
        waits += 1
        if waits == 2:
            self.confirm(0)

    monkeypatch.setattr(Durability, "wait", second_wait_times_out)
    per_round_trip = CHUNK * CHUNKS_PER_ROUND_TRIP
    with pytest.raises(OutcomeUnknown) as unknown:
        producer.enqueue_many(wire_messages(per_round_trip + 1))
    assert len(unknown.value.enqueued) == per_round_trip
    assert states(producer, list(unknown.value.enqueued)) == {"queued": per_round_trip}


def burst(producer: Producer, threads: int = 4, singles: int = 500, batch: int = 500) -> list[str]:
    """Job ids whose enqueue returned: `singles` enqueues and one enqueue_many per thread."""
    returned: list[str] = []
    lock = threading.Lock()

    def client_of_a_web_app(first: int) -> None:
        for message in wire_messages(singles, first=first):
            job_id = producer.enqueue(message)
            with lock:
                returned.append(job_id)
        job_ids = producer.enqueue_many(wire_messages(batch, first=first + singles))
        with lock:
            returned.extend(job_ids)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(client_of_a_web_app, range(0, threads * 10_000, 10_000)))
    return returned


def crash_and_restart(server: Server, producer: Producer) -> tuple[list[str], int]:
    """A burst, SIGKILL as soon as its last enqueue returned, a restart: (ids, ids missing)."""
    job_ids = burst(producer)
    server.kill()  # no clean shutdown: only what reached the append-only file survives
    server.start()
    missing = producer.get_statuses(job_ids).count(None)
    return job_ids, missing


@pytest.mark.slow
@pytest.mark.integration
def test_a_redis_crash_loses_no_job_whose_durable_enqueue_returned(
    valkey: Callable[..., Server],
    start_worker: Callable[..., WorkerProcess],
    sandbox: Sandbox,
    pipeline_env: dict[str, str],
) -> None:
    plain = valkey(*AOF)
    _, lost_without = crash_and_restart(plain, durable_producer(plain.url, durable="off"))
    server = valkey(*AOF)
    producer = durable_producer(server.url)
    job_ids, missing = crash_and_restart(server, producer)
    print(f"\ncrash: {len(job_ids)} enqueues returned before SIGKILL; after the restart "
          f"{len(job_ids) - missing} there, {missing} missing (ZQ_DURABLE=aof); without "
          f"durable {lost_without} of {len(job_ids)} missing")  # fmt: skip
    assert len(job_ids) == 4000
    assert missing == 0
    assert states(producer, job_ids) == {"queued": 4000}

    pipeline_env["REDIS_URL"] = server.url
    pipeline_env["ZQ_QUEUE"] = producer.settings.queue
    start_worker()
    wait_until(lambda: all_final(producer, job_ids), timeout=120, what="every job to be sent")
    assert states(producer, job_ids) == {"sent": 4000}
    assert {request["job_id"] for request in sandbox.requests()} >= set(job_ids)
