"""Redis trouble as the caller sees it: nothing stored (RedisUnavailable) or maybe (OutcomeUnknown).

Real servers play each part: an address nobody listens on, a socket that answers the connection
handshake and then never again, a throwaway redis-server out of memory, and one that is a
read-only replica. The shared test Redis is never reconfigured.
"""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from producer import OutcomeUnknown, Producer, RedisUnavailable, StorageError
from producer.settings import ProducerSettings
from producer.store import Store, connection_options
from tests.support import wait_until, wire_message, wire_messages

enqueue_module = importlib.import_module("producer.enqueue")
"""The module (the package's `producer.enqueue` attribute is the function)."""
UNREACHABLE = "redis://127.0.0.1:1/0"
JOB_ID = "ab" * 16
"""Shaped like a job id, so that reading its status asks Redis."""


def producer_at(url: str, socket_timeout: float = 0.5) -> Producer:
    settings = ProducerSettings(redis_url=url, socket_timeout=socket_timeout, queue="zq-test")
    return Producer(settings, Store.connect(settings))


def job_keys(client: redis.Redis) -> list[str]:
    return [key for key in cast(list[str], client.keys("*")) if ":job:" in key]


# --- nobody listens ---

WRITES: list[tuple[Callable[[Producer], object], str]] = [
    (lambda p: p.enqueue(wire_message()), "enqueue the jobs"),
    (lambda p: p.enqueue_many(wire_messages(3)), "enqueue the jobs"),
    (lambda p: p.cancel(JOB_ID), "cancel the job"),
]
READS: list[tuple[Callable[[Producer], object], str]] = [
    (lambda p: p.get_status(JOB_ID), "read the job status"),
    (lambda p: p.get_statuses([JOB_ID]), "read the job statuses"),
]


@pytest.mark.parametrize(("call", "action"), WRITES, ids=["enqueue", "enqueue_many", "cancel"])
def test_unreachable_redis_stored_nothing(call: Any, action: str) -> None:
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as refused:
        call(producer_at(UNREACHABLE))
    assert time.monotonic() - started < 5
    text = str(refused.value)
    assert text.startswith(f"could not {action}: Redis is unreachable (ConnectionError")
    assert text.endswith("; nothing was stored")
    assert refused.value.enqueued == ()
    assert isinstance(refused.value, StorageError) and isinstance(refused.value, ConnectionError)


@pytest.mark.parametrize(("call", "action"), READS, ids=["get_status", "get_statuses"])
def test_unreachable_redis_for_a_read_says_nothing_about_storing(call: Any, action: str) -> None:
    with pytest.raises(RedisUnavailable) as refused:
        call(producer_at(UNREACHABLE))
    assert str(refused.value).startswith(f"could not {action}: Redis is unreachable")
    assert "stored" not in str(refused.value)


# --- a server that stops answering ---

HANDSHAKE_REPLIES = {
    b"PING": b"+PONG\r\n",
    b"HELLO": b"%1\r\n+proto\r\n:3\r\n",  # RESP3, as redis-py 8 asks for
    b"CLIENT": b"+OK\r\n",
    b"SELECT": b"+OK\r\n",
}


def take_commands(buffer: bytearray) -> list[list[bytes]]:
    """Take the complete RESP commands (arrays of bulk strings) off the front of `buffer`."""
    commands: list[list[bytes]] = []
    while buffer.startswith(b"*") and (end := buffer.find(b"\r\n")) > 0:
        at, command = end + 2, []
        for _ in range(int(buffer[1:end])):
            end = buffer.find(b"\r\n", at)
            if end < 0:
                return commands
            size = int(buffer[at + 1 : end])
            if len(buffer) < end + 2 + size + 2:
                return commands
            command.append(bytes(buffer[end + 2 : end + 2 + size]))
            at = end + 2 + size + 2
        del buffer[:at]
        commands.append(command)
    return commands


@dataclass
class MuteServer:
    """Accepts connections and reads every command; answers only the handshake, if at all."""

    answer_handshake: bool
    received: list[bytes] = field(default_factory=list)
    """The name of every command received, in order."""
    _listener: socket.socket = field(default_factory=socket.socket)
    _connections: list[socket.socket] = field(default_factory=list)

    def start(self) -> MuteServer:
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def stop(self) -> None:
        for sock in (self._listener, *self._connections):
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # stopped
                return
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffer = bytearray()
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            for command in take_commands(buffer):
                name = command[0].upper()
                self.received.append(name)
                reply = HANDSHAKE_REPLIES.get(name) if self.answer_handshake else None
                if reply:
                    connection.sendall(reply)


@pytest.fixture
def mute_server() -> Iterator[Callable[[bool], MuteServer]]:
    servers: list[MuteServer] = []

    def start(answer_handshake: bool) -> MuteServer:
        servers.append(MuteServer(answer_handshake).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_a_server_that_never_answers_the_handshake_stored_nothing(
    mute_server: Callable[[bool], MuteServer],
) -> None:
    """Only the connection's own commands went out: the job was never sent to Redis."""
    server = mute_server(False)
    with pytest.raises(RedisUnavailable) as refused:
        producer_at(server.url, socket_timeout=0.3).enqueue(wire_message())
    assert "Redis is unreachable (TimeoutError" in str(refused.value)
    assert str(refused.value).endswith("nothing was stored")
    assert refused.value.enqueued == ()
    assert server.received and not {b"EVALSHA", b"EVAL"} & set(server.received)


def test_an_answer_lost_after_the_write_went_out_is_an_unknown_outcome(
    mute_server: Callable[[bool], MuteServer],
) -> None:
    server = mute_server(True)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as unknown:
        producer_at(server.url, socket_timeout=0.3).enqueue(wire_message(), idempotency_key="k")
    assert time.monotonic() - started < 3
    assert b"EVALSHA" in server.received
    assert unknown.value.enqueued == ()
    text = str(unknown.value)
    assert "could not enqueue the jobs: the call reached Redis" in text
    assert "it may have been stored: retry with the same idempotency key" in text
    assert "nothing was stored" not in text
    assert isinstance(unknown.value, StorageError) and isinstance(unknown.value, ConnectionError)


def test_a_read_whose_answer_is_lost_is_no_unknown_outcome(
    mute_server: Callable[[bool], MuteServer],
) -> None:
    """A read changes nothing, so a lost answer leaves nothing in doubt."""
    server = mute_server(True)
    with pytest.raises(RedisUnavailable) as refused:
        producer_at(server.url, socket_timeout=0.3).get_status(JOB_ID)
    assert b"HGETALL" in server.received
    assert "Redis is unreachable (TimeoutError" in str(refused.value)
    assert "stored" not in str(refused.value)


# --- Redis refusing writes: out of memory, a read-only replica ---


@dataclass
class Server:
    """A throwaway redis-server of the test's own."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, **connection_options(2.0))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start redis-server processes with extra options; every one is stopped after the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    started: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> Server:
        for _ in range(3):  # another process may take the free port first
            port = free_port()
            command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", str(tmp_path), *options]  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            started.append(process)
            server = Server(port, process)
            if wait_until(partial(_state, server), timeout=10, what="redis-server") == "up":
                return server
        raise AssertionError("could not start redis-server")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _state(server: Server) -> str | None:
    if server.process.poll() is not None:
        return "exited"
    with server.client() as client:
        try:
            return "up" if client.ping() else None
        except redis.ConnectionError:
            return None


def test_redis_out_of_memory_stored_nothing(redis_server: Callable[..., Server]) -> None:
    server = redis_server("--maxmemory", "1mb", "--maxmemory-policy", "noeviction")
    with server.client() as client:
        for number in range(1000):
            try:
                client.set(f"filler:{number}", "x" * 10_000)
            except redis.OutOfMemoryError:
                break
        else:
            pytest.fail("redis-server never ran out of memory")
        producer = producer_at(server.url)

        for call in (
            lambda: producer.enqueue(wire_message()),
            lambda: producer.enqueue(wire_message(), idempotency_key="order-42"),
            lambda: producer.enqueue_many(wire_messages(3)),
        ):
            with pytest.raises(RedisUnavailable) as refused:
                call()
            assert "Redis is out of memory" in str(refused.value)
            assert str(refused.value).endswith("nothing was stored")
            assert refused.value.enqueued == ()

        assert job_keys(client) == []
        assert client.llen("zq-test") == 0


def test_a_read_only_replica_stored_nothing(redis_server: Callable[..., Server]) -> None:
    primary = redis_server()
    replica = redis_server("--replicaof", "127.0.0.1", str(primary.port),
                           "--replica-read-only", "yes")  # fmt: skip
    producer = producer_at(replica.url)

    with pytest.raises(RedisUnavailable) as refused:
        producer.enqueue(wire_message())

    assert "Redis is a read-only replica" in str(refused.value)
    assert str(refused.value).endswith("nothing was stored")
    with replica.client() as client:
        assert job_keys(client) == []
    with primary.client() as client:
        assert job_keys(client) == []


# --- a batch stored in part ---


@pytest.fixture
def real_producer(redis_url: str) -> Producer:
    """A producer on the tests' real Redis database (fakeredis's Lua is slow for many jobs)."""
    return producer_at(redis_url)


def fail_second_call(
    producer: Producer, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> list[int]:
    """One chunk per round trip, and the second call of enqueue.lua raises `error`.

    Returns the argument counts of the calls made, as they are made.
    """
    monkeypatch.setattr(enqueue_module, "CHUNKS_PER_ROUND_TRIP", 1)
    script, calls = producer._enqueue, []

    def failing_second(*, keys: list[str], args: list[Any], client: Any = None) -> Any:
        calls.append(len(args))
        if len(calls) == 2:
            raise error
        return script(keys=keys, args=args, client=client)

    monkeypatch.setattr(producer, "_enqueue", failing_second)
    return calls


def test_a_batch_that_fails_part_way_names_the_jobs_stored_before(
    real_producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fail_second_call(real_producer, monkeypatch, redis.ConnectionError("reset by peer"))
    messages = wire_messages(1500)

    with pytest.raises(RedisUnavailable) as refused:
        real_producer.enqueue_many(messages)

    stored = refused.value.enqueued
    assert len(calls) == 2
    assert len(stored) == 1000 and len(set(stored)) == 1000
    records = real_producer.store.records
    ready = cast(list[str], records.lrange(real_producer.keys.ready, 0, -1))
    assert ready[::-1] == list(stored)
    pipe = records.pipeline(transaction=False)
    for job_id in stored:
        pipe.hget(real_producer.keys.job(job_id), "to")
    assert pipe.execute() == [message["to"] for message in messages[:1000]]
    assert len(job_keys(records)) == 1000  # the first chunk's records, and no more


def test_a_retry_under_the_same_key_completes_a_batch_stored_in_part(
    real_producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What OutcomeUnknown and a partial StorageError advise: retry with the same key."""
    fail_second_call(real_producer, monkeypatch, redis.TimeoutError("answer lost"))
    messages = wire_messages(1200)
    with pytest.raises(StorageError) as failed:
        real_producer.enqueue_many(messages, idempotency_key="batch-9")

    job_ids = real_producer.enqueue_many(messages, idempotency_key="batch-9")

    assert job_ids[:1000] == list(failed.value.enqueued)
    ready = cast(list[str], real_producer.store.records.lrange(real_producer.keys.ready, 0, -1))
    assert ready[::-1] == job_ids
