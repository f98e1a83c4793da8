"""The limits a pipeline is measured against: hand-written clients, no queue, in one process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp
import requests
from requests.adapters import HTTPAdapter

from worker.zixflow import SEND_PATH


def requests_loop_rate(url: str, key: str, bodies: Sequence[bytes]) -> float:
    """Messages/s of one requests.Session posting one message after another.

    At its best: one prepared request copied per send, keep-alive, no environment lookups.
    """
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    template = session.prepare_request(requests.Request("POST", url + SEND_PATH, headers))
    started = time.perf_counter()
    with session:
        for body in bodies:
            request = template.copy()
            request.prepare_body(body, None)
            answer = session.send(request, timeout=30)
            assert answer.status_code == 200 and answer.json()["status"] is True, answer.text
    return len(bodies) / (time.perf_counter() - started)


def aiohttp_loop_rate(url: str, key: str, bodies: Sequence[bytes], in_flight: int) -> float:
    """Messages/s of one asyncio loop keeping `in_flight` aiohttp sends going at once."""
    return asyncio.run(_aiohttp_loop(url + SEND_PATH, key, bodies, in_flight))


async def _aiohttp_loop(url: str, key: str, bodies: Sequence[bytes], in_flight: int) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    pending = iter(bodies)
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:

        async def sender() -> None:
            for body in pending:  # shared: each body goes out once
                async with session.post(url, data=body, headers=headers) as answer:
                    document = await answer.json()
                    assert answer.status == 200 and document["status"] is True, document

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        return len(bodies) / (time.perf_counter() - started)
