"""Fixtures of the integration tests: Redis servers of a test's own, stopped after it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.servers import SentinelGroup, Server, valkey_binary


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start valkey-servers (Redis 7.2+: WAITAOF) with the options given; stopped after."""
    binary = valkey_binary()
    if binary is None:
        pytest.skip("no valkey-server (a Redis with WAITAOF): run .ci/get-valkey or set "
                    "ZQ_TEST_VALKEY")  # fmt: skip
    servers: list[Server] = []

    def start(*options: str) -> Server:
        workdir = tmp_path / f"valkey-{len(servers)}"
        workdir.mkdir()
        servers.append(Server(binary, workdir, *options))
        return servers[-1].start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A master, two replicas and three sentinels (redis-server), running; stopped after."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    group = SentinelGroup(binary, tmp_path)
    try:
        yield group.start()
    finally:
        group.stop()
