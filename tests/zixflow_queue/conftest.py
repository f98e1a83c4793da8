"""Fixtures for running the command line in-process, on the tests' real Redis database."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest

from producer.enqueue import Producer, default_producer
from producer.settings import producer_settings
from producer.store import default_store
from zixflow_queue import cli

CACHED = (producer_settings, default_store, default_producer)
CliResult = tuple[int, str, str]
"""Exit code, stdout and stderr of one command."""


def clear_caches() -> None:
    """Forget the settings, store and producer read from the environment so far."""
    for cached in CACHED:
        cached.cache_clear()


@pytest.fixture
def cli_environment(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command line's environment: the tests' Redis database and a queue of its own."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ZQ_QUEUE", "zq-cli-test")
    for variable in ("CELERY_BROKER_URL", "ZQ_PREFIX", "ZQ_MEDIA_FORM"):
        monkeypatch.delenv(variable, raising=False)
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def producer(cli_environment: None) -> Producer:
    """The producer the command line uses."""
    return default_producer()


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `zixflow-queue ARGV...` in-process: its exit code, stdout and stderr."""

    def run_cli(*argv: str) -> CliResult:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run_cli


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Callable[[bytes], None]:
    """Give standard input these bytes."""

    def feed(data: bytes) -> None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))

    return feed
