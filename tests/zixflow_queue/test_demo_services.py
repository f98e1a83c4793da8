"""The Redis the demo starts when none answers, and what it says about it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from zixflow_queue.demo import services

NOWHERE = "redis://127.0.0.1:1/0"
NOTES = {
    "redis-server": r"started redis-server on port (\d+) \(keeping nothing on disk\)",
    "embedded": r"redis-server is not installed, so started an embedded fakeredis server on port "
    r"(\d+), for trying only: slower than Redis, and it keeps nothing",
}


@pytest.mark.parametrize("kind", NOTES)
def test_the_note_on_a_redis_the_demo_starts_reads_as_a_sentence(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", NOWHERE)
    if kind == "embedded":
        monkeypatch.setattr(shutil, "which", lambda _: None)
    elif shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with services.redis_service(tmp_path) as server:
        assert server.private and services.redis_answers(server.url)
    note = capsys.readouterr().err
    started = re.fullmatch(rf"Redis: none answered at {re.escape(NOWHERE)}; {NOTES[kind]}\n", note)
    assert started, note
    assert server.url == f"redis://127.0.0.1:{started[1]}/0"
