"""`python -m bench.durable`: what durable enqueue (ZQ_DURABLE=aof) costs, measured in one run.

`enqueue` in a loop and `enqueue_many` in batches of 1,000, with ZQ_DURABLE off and aof, taking
turns against one valkey-server (Redis 7.2+: WAITAOF) started for the purpose with append-only
persistence, fsync every second, in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import BATCH, sample_messages
from producer import Producer
from producer.settings import ProducerSettings
from producer.store import Store
from zixflow_queue.demo.processes import Command, free_port, running, wait_ready
from zixflow_queue.demo.services import redis_answers

VALKEY = Path(__file__).resolve().parents[1] / ".ci/valkey/root/usr/bin/valkey-server"
"""Where .ci/get-valkey puts valkey-server."""
MODES = ("off", "aof")


def default_valkey() -> str:
    """valkey-server from ZQ_TEST_VALKEY, else where .ci/get-valkey puts it."""
    return os.environ.get("ZQ_TEST_VALKEY") or str(VALKEY)


def durable_rates(valkey: str, jobs: int = 5000, rounds: int = 5) -> dict[str, float]:
    """Jobs/s of `enqueue` and `enqueue_many` per ZQ_DURABLE mode, the median of `rounds`."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory(prefix="zq-durable-") as workdir:
        log = Path(workdir) / "valkey.log"
        argv = [valkey, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]  # fmt: skip
        with running([Command(argv, log)]) as (server,):
            wait_ready(server, lambda: redis_answers(url), "valkey-server", log)
            producers = {mode: _producer(url, mode) for mode in MODES}
            for producer in producers.values():  # connections made, scripts loaded
                producer.enqueue_many(sample_messages(BATCH, first=-BATCH))
            samples: dict[str, list[float]] = defaultdict(list)
            for round_number in range(rounds):  # the modes take turns: same disk, same load
                messages = sample_messages(jobs, first=round_number * jobs)
                batches = [messages[start : start + BATCH] for start in range(0, jobs, BATCH)]
                for mode, producer in producers.items():
                    samples[f"enqueue_{mode}"].append(_rate(jobs, producer.enqueue, messages))
                    samples[f"enqueue_many_{mode}"].append(
                        _rate(jobs, producer.enqueue_many, batches)
                    )
    return {name: statistics.median(values) for name, values in samples.items()}


def _producer(url: str, mode: str) -> Producer:
    settings = ProducerSettings(redis_url=url, queue=f"bench-durable-{mode}", durable=mode)
    return Producer(settings, Store.connect(settings))


def _rate(jobs: int, call: Callable[[Any], object], arguments: list[Any]) -> float:
    """Jobs/s of `call` made once per argument, one after another."""
    started = time.perf_counter()
    for argument in arguments:
        call(argument)
    return jobs / (time.perf_counter() - started)


def report(rates: dict[str, float]) -> str:
    """The rates as a table, with durable's share of the rate without it."""
    lines = [f"{'':<14}{'off':>12}{'aof':>12}{'aof / off':>12}"]
    for call in ("enqueue", "enqueue_many"):
        off, aof = rates[f"{call}_off"], rates[f"{call}_aof"]
        lines.append(f"{call:<14}{off:>12,.0f}{aof:>12,.0f}{aof / off:>12.2f}")
    return "\n".join(lines) + "\n(jobs/s; valkey, appendonly yes, appendfsync everysec)"


def main(argv: list[str] | None = None) -> int:
    """Measure and print; exit 2 without a valkey-server."""
    parser = argparse.ArgumentParser(prog="python -m bench.durable", description=__doc__)
    parser.add_argument("--valkey", default=default_valkey(), help="a valkey-server (7.2+)")
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per measurement")
    args = parser.parse_args(argv)
    if not os.access(args.valkey, os.X_OK):
        print(f"error: no valkey-server at {args.valkey}: run .ci/get-valkey", file=sys.stderr)
        return 2
    print(report(durable_rates(args.valkey, args.jobs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
