"""The benchmark's results as a table: each figure beside its limit, its ratio and its target."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str]
"""(what, the figure, its ratio to its limit and the target)."""


def report(results: dict[str, Any]) -> str:
    """The table, with a first line naming the machine and the run."""
    rows = (
        _limit_rows(results) + _worker_rows(results) + _cpu_rows(results) + _enqueue_rows(results)
    )
    width = max(len(what) for what, _, _ in rows)
    figure_width = max(len(figure) for _, figure, _ in rows)
    lines = [f"{results['machine']}; {results['messages']:,} messages per run", ""]
    lines += [
        f"{what:<{width}}  {figure:>{figure_width}}  {ratio}".rstrip()
        for what, figure, ratio in rows
    ]
    return "\n".join(lines)


def _limit_rows(results: dict[str, Any]) -> list[Row]:
    slow = f"answers in {results['latency']:g} s"
    return [
        ("limit: requests.Session, one after another", _rate(results["requests_loop"]), ""),
        ("limit: aiohttp loop, 128 in flight", _rate(results["aiohttp_128"]), ""),
        (f"limit: aiohttp loop, 1,024 in flight, {slow}", _rate(results["aiohttp_1024_slow"]), ""),
    ]


def _worker_rows(results: dict[str, Any]) -> list[Row]:
    slow = f"answers in {results['latency']:g} s"
    bulk, singles, bulk_slow = results["bulk"], results["singles"], results["bulk_slow"]
    latency = f"{results['latency_p50_ms']:.1f} / {results['latency_p99_ms']:.1f} ms"
    memory = f"{results['rss_mb']:.0f} MB ({results['rss_slow_mb']:.0f} MB)"
    return [
        ("worker: enqueue_many -> sent, answers at once", _rate(bulk),
         _ratio(bulk, results["aiohttp_128"], "aiohttp 128", 0.8)),
        ("worker: 8 threads, one enqueue per message", _rate(singles),
         _ratio(singles, bulk, "enqueue_many", 0.8)),
        (f"worker: enqueue_many -> sent, {slow}", _rate(bulk_slow),
         _ratio(bulk_slow, results["aiohttp_1024_slow"], "aiohttp 1,024", 0.8)),
        ("added latency, 200 single enqueues/s: p50 / p99", latency,
         _target(results["latency_p99_ms"] <= 50, "p99 <= 50 ms")),
        ("worker peak RSS (after the slow answers)", memory,
         _target(results["rss_slow_mb"] <= 150, "<= 150 MB")),
    ]  # fmt: skip


def _cpu_rows(results: dict[str, Any]) -> list[Row]:
    """CPU per message of each part, and the ceiling their sums set once the cores are busy."""
    loop, pipeline = results["cpu_ms_loop"], results["cpu_ms_pipeline"]
    ceiling = sum(loop.values()) / sum(pipeline.values())
    return [
        ("CPU per message, aiohttp loop 128", _ms(sum(loop.values())), _parts(loop)),
        ("CPU per message, answers at once", _ms(sum(pipeline.values())),
         f"{_parts(pipeline)}: the loop's is {ceiling:.2f}x, the ceiling on busy cores"),
    ]  # fmt: skip


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _parts(parts: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in parts.items())


def _enqueue_rows(results: dict[str, Any]) -> list[Row]:
    return [
        ("enqueue, one call per job", _rate(results["enqueue"], "jobs/s"), ""),
        ("enqueue_many, batches of 1,000", _rate(results["enqueue_many"], "jobs/s"), ""),
    ]


def _rate(value: float, unit: str = "msg/s") -> str:
    return f"{value:,.0f} {unit}"


def _ratio(value: float, limit: float, name: str, target: float) -> str:
    ratio = value / limit
    return f"{ratio:.2f}x {name}  " + _target(ratio >= target, f">= {target}x")


def _target(met: bool, target: str) -> str:
    return f"({'met' if met else 'MISSED'}: {target})"
