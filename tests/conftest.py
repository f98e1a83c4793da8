"""Fixtures: a private Redis database, fakeredis, the sandbox, worker processes, an app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from producer.enqueue import Producer
from producer.settings import ProducerSettings
from producer.store import Store
from tests.integration.test_events import Receiver
from tests.support import SANDBOX_KEY, WorkerProcess
from zixflow_queue.sandbox import Sandbox

SERVER_URL = "redis://127.0.0.1:6379"
TEST_DATABASES = range(15, 7, -1)
"""Databases a test run may take, each held by one run at a time (see `test_database`)."""
HOLD_SECONDS = 3 * 3600


@pytest.fixture(scope="session")
def test_database() -> Iterator[str]:
    """A Redis database this test run holds alone: ZQ_TEST_REDIS_URL, or a free one of 8-15.

    Runs on one machine (a CI run beside a developer's) would otherwise empty each other's
    database mid-test. Each holds its database with a key in database 0 until it ends.
    """
    if explicit := os.environ.get("ZQ_TEST_REDIS_URL"):
        yield explicit
        return
    holds = redis.Redis.from_url(f"{SERVER_URL}/0")
    try:
        holds.ping()
    except redis.ConnectionError:
        pytest.fail(f"no Redis at {SERVER_URL}: the tests need one")
    owner = f"{os.getpid()}-{uuid.uuid4().hex}"
    for number in TEST_DATABASES:
        key = f"zixflow-queue:tests:db{number}"
        if holds.set(key, owner, nx=True, ex=HOLD_SECONDS):
            try:
                yield f"{SERVER_URL}/{number}"
            finally:
                if holds.get(key) == owner.encode():
                    holds.delete(key)
                holds.close()
            return
    pytest.fail(f"every test database of {SERVER_URL} (8-15) is held by another test run")


@pytest.fixture
def redis_url(test_database: str) -> Iterator[str]:
    """A real Redis database of this test run's own, emptied before and after each test."""
    client = redis.Redis.from_url(test_database)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"no Redis at {test_database}: the integration tests need one")
    client.flushdb()
    yield test_database
    client.flushdb()
    client.close()


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the tests' Redis database, decoding strings."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def fake_store() -> Store:
    """A store on fakeredis (records and queue in one server)."""
    client = fakeredis.FakeRedis(decode_responses=True)
    return Store(client, client, shared=True)


@pytest.fixture
def settings() -> ProducerSettings:
    """Producer settings for tests, independent of the environment."""
    return ProducerSettings(redis_url="redis://fake/0", queue="zq-test")


@pytest.fixture
def fake_producer(settings: ProducerSettings, fake_store: Store) -> Producer:
    """A producer writing to fakeredis."""
    return Producer(settings, fake_store)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The Zixflow sandbox, serving on a free port in a background thread."""
    with Sandbox(api_key=SANDBOX_KEY) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An app's endpoint on a free port (test_events.Receiver): records each POST, answers with
    the statuses scripted (200 once they run out)."""
    app = Receiver()
    yield app
    app.hold.clear()
    app.server.shutdown()
    app.server.server_close()


@pytest.fixture
def queue_name() -> str:
    """A queue of the test's own, so that no stray worker takes its jobs."""
    return f"zq-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pipeline_env(redis_url: str, sandbox: Sandbox, queue_name: str) -> dict[str, str]:
    """Environment for producers and workers of one integration test."""
    return {
        "REDIS_URL": redis_url,
        "ZIXFLOW_API_KEY": SANDBOX_KEY,
        "ZIXFLOW_BASE_URL": sandbox.url,
        "ZQ_QUEUE": queue_name,
        "ZQ_BACKOFF_BASE": "0.05",
        "ZQ_BACKOFF_CAP": "0.5",
        "ZQ_RECIPIENT_INTERVAL": "0",
        "ZQ_PHONE_RATE": "100000",
        "ZQ_SCHEDULER_INTERVAL": "0.05",
    }


@pytest.fixture
def producer_for(pipeline_env: dict[str, str]) -> Callable[..., Producer]:
    """Build a producer for the integration test's Redis and queue."""

    def build(**overrides: Any) -> Producer:
        options = {"redis_url": pipeline_env["REDIS_URL"], "queue": pipeline_env["ZQ_QUEUE"]}
        settings = ProducerSettings(**{**options, **overrides})
        return Producer(settings, Store.connect(settings))

    return build


@pytest.fixture
def start_worker(
    pipeline_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes; every one still running is killed after the test."""
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        name = ("-n", f"w{len(started)}-{uuid.uuid4().hex[:6]}@%h")
        worker = WorkerProcess({**pipeline_env, **(env or {})}, log, *name, *args)
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.kill()
