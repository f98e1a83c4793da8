"""Redis servers of a test's own: valkey (WAITAOF, for durable enqueue) and a Sentinel group."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import redis

from bench.durable import default_valkey
from tests.support import wait_until
from zixflow_queue.demo.processes import free_port
from zixflow_queue.demo.services import redis_answers

MASTER = "mymaster"


def valkey_binary() -> str | None:
    """valkey-server from ZQ_TEST_VALKEY or .ci/get-valkey, if there is one."""
    path = default_valkey()
    return path if os.access(path, os.X_OK) else None


class Server:
    """One redis-server, valkey-server or sentinel process on a free loopback port."""

    def __init__(self, binary: str, workdir: Path, *options: str, config: Path | None = None):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / f"server-{self.port}.log"
        head = [binary, str(config)] if config else [binary]
        self.argv = [*head, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                     str(workdir), "--logfile", str(self.log), *options]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        """Start it (again, with the same port and files) and wait until it answers PING."""
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL)
        wait_until(lambda: redis_answers(self.url) or self.process.poll() is not None,  # type: ignore[union-attr]
                   timeout=20, what=f"the server on port {self.port}")  # fmt: skip
        assert self.process.poll() is None, self.log.read_text()[-2000:]
        return self

    def client(self) -> redis.Redis:
        """A client of this server (decoding strings)."""
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def signal(self, number: signal.Signals) -> None:
        """Send the process a signal (SIGKILL, SIGSTOP, SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no last write; wait until it is gone."""
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop it for sure, frozen or not."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


SENTINEL_CONFIG = """\
sentinel monitor {master} 127.0.0.1 {port} 2
sentinel down-after-milliseconds {master} 1000
sentinel failover-timeout {master} 5000
sentinel parallel-syncs {master} 1
"""


class SentinelGroup:
    """A master, two replicas and three sentinels, on loopback; config files in `workdir`.

    Two replicas: after a failover, one is still there to confirm WAIT 1 (ZQ_DURABLE=replica).
    """

    def __init__(self, binary: str, workdir: Path) -> None:
        common = ("--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0")
        self.master = Server(binary, workdir, *common, "--dbfilename", "master.rdb")
        self.replicas = [
            Server(binary, workdir, *common, "--dbfilename", f"replica-{number}.rdb",
                   "--replicaof", "127.0.0.1", str(self.master.port))
            for number in range(2)
        ]  # fmt: skip
        self.sentinels = []
        for number in range(3):
            config = workdir / f"sentinel-{number}.conf"  # sentinel rewrites it: writable
            config.write_text(SENTINEL_CONFIG.format(master=MASTER, port=self.master.port))
            self.sentinels.append(Server(binary, workdir, "--sentinel", config=config))
        self.servers = [self.master, *self.replicas, *self.sentinels]

    @property
    def url(self) -> str:
        """The sentinel:// URL of the group, database 0."""
        return ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in self.sentinels)

    def start(self) -> SentinelGroup:
        """Start every server and wait until each sentinel knows the replica and the others."""
        for server in self.servers:
            server.start()
        wait_until(self._ready, timeout=30, what="the sentinels to know the whole group")
        return self

    def master_port(self) -> int | None:
        """The master's port as the first sentinel that answers says."""
        for sentinel in self.sentinels:
            try:
                address: Any = sentinel.client().sentinel_get_master_addr_by_name(MASTER)
            except redis.RedisError:
                continue
            return int(address[1]) if address else None
        return None

    def stop(self) -> None:
        """Stop every server of the group, frozen ones too."""
        for server in self.servers:
            server.stop()

    def _ready(self) -> bool:
        links = [r.client().info("replication").get("master_link_status") for r in self.replicas]
        views: list[Any] = [s.client().sentinel_master(MASTER) for s in self.sentinels]
        return links == ["up", "up"] and all(
            (view["num-slaves"], view["num-other-sentinels"]) == (2, 2) for view in views
        )
