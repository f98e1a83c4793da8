"""`python -m zixflow_queue.demo.embedded_redis PORT`: fakeredis over TCP, for a demo with no Redis.

For trying only: slower than Redis, and it keeps nothing. Every Lua script the pipeline runs is
loaded up front, because fakeredis's TCP server hangs up on a client after answering NOSCRIPT
(fakeredis-py issue 432), where Redis lets redis-py load the script and carry on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.resources import files

import fakeredis
from kombu.transport import redis as kombu_redis


def lua_scripts() -> Iterator[str]:
    """The producer's and the worker's scripts, and those kombu's Redis transport runs."""
    for package in ("producer.scripts", "worker.scripts"):
        for resource in files(package).iterdir():
            if resource.name.endswith(".lua"):
                yield resource.read_text(encoding="utf-8")
    yield from (kombu_redis.REFRESH_BINDING, kombu_redis.SWEEP_BINDINGS)


def main(port: int) -> None:
    """Serve on 127.0.0.1:`port` until killed."""
    server = fakeredis.TcpFakeServer(("127.0.0.1", port))
    client = fakeredis.FakeRedis(server=server.fake_server)
    for source in lua_scripts():
        client.script_load(source)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
