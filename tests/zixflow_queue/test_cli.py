"""The command line, on the tests' real Redis database."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from zixflow_queue import cli
from producer.deadletters import DeadLetter, DeadLetters
from producer.enqueue import Producer, default_producer
from producer.settings import environment_variables, producer_settings
from producer.store import default_store
from tests.support import wait_until, wire_message
from worker.settings import WorkerSettings
from zixflow_queue.demo.processes import free_port

CACHED = (producer_settings, default_store, default_producer)


@pytest.fixture(autouse=True)
def environment(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ZQ_QUEUE", "zq-cli-test")
    for cached in CACHED:
        cached.cache_clear()
    yield
    for cached in CACHED:
        cached.cache_clear()


@pytest.fixture
def producer() -> Producer:
    return default_producer()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


SEND = ["send", "--to", "+91 98765 43210", "--phone-id", "123456", "--body", "Deliver?"]


def write_lines(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows))
    return path


def test_send_dry_run_prints_the_wire_message(
    capsys: pytest.CaptureFixture[str], producer: Producer
) -> None:
    code, out, _ = run(capsys, *SEND, "--button", "yes=Yes", "--button", "No", "--dry-run")
    assert code == 0
    wire = json.loads(out)
    assert (wire["to"], wire["type"], wire["source"]) == ("919876543210", "interactive", "API")
    assert wire["interactive"]["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
        {"type": "reply", "reply": {"id": "No", "title": "No"}},
    ]
    assert producer.store.records.dbsize() == 0


def test_send_enqueues_and_status_reads_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SEND, "--button", "Yes", "--json")
    job_id = json.loads(out)["job_id"]
    assert code == 0
    code, out, _ = run(capsys, "status", job_id, "--json")
    assert code == 0 and json.loads(out)["state"] == "queued"


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_send_reads_a_wire_message(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    producer: Producer,
    source: str,
) -> None:
    text = json.dumps(wire_message(to="919800000001"))
    path = tmp_path / "message.json"
    path.write_text(text)
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out, _ = run(capsys, "send", "--file", str(path) if source == "file" else "-")
    status = producer.get_status(out.strip())
    assert code == 0 and status is not None and status.state == "queued"


def test_idempotency_key_gives_the_same_job(capsys: pytest.CaptureFixture[str]) -> None:
    first = run(capsys, *SEND, "--button", "Yes", "--idempotency-key", "order-7")
    again = run(capsys, *SEND, "--button", "Yes", "--idempotency-key", "order-7")
    assert first[0] == again[0] == 0 and first[1] == again[1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([*SEND, "--button", "x" * 21], ["interactive.action.buttons.0.reply.title", "at most 20"]),
        ([*SEND, "--button", "A", "--button", "B", "--button", "C", "--button", "D"],
         ["interactive.action.buttons"]),
        (["send", "--to", "12", "--phone-id", "1", "--body", "Hi", "--button", "Yes"], ["to:"]),
        (["send", "--to", "919876543210"], ["missing --phone-id, --body, --button"]),
        (["send", "--file", "x.json", "--to", "919876543210"], ["leave out --to"]),
        (["send", "--file", "missing.json"], ["No such file", "missing.json"]),
        (["bulk", "missing.jsonl"], ["No such file", "missing.jsonl"]),
        (["demo", "--to", "919876543210"], ["--to and --phone-id go together"]),
    ],
)  # fmt: skip
def test_bad_input_exits_2_and_says_what_is_wrong(
    capsys: pytest.CaptureFixture[str], producer: Producer, argv: list[str], expected: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert all(text in err for text in expected), err
    assert producer.store.records.dbsize() == 0


def test_a_file_that_is_not_json_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "message.json"
    path.write_text("{not json")
    code, _, err = run(capsys, "send", "--file", str(path))
    assert code == 2 and "not valid JSON" in err


def test_redis_down_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    for cached in CACHED:
        cached.cache_clear()
    code, out, err = run(capsys, *SEND, "--button", "Yes")
    assert code == 1 and out == ""
    assert "Redis is unreachable" in err


def test_bulk_with_a_bad_line_enqueues_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, producer: Producer
) -> None:
    path = write_lines(
        tmp_path / "messages.jsonl",
        [wire_message(), wire_message(to="12"), "{oops", wire_message(to="919800000003")],
    )
    code, out, err = run(capsys, "bulk", str(path))
    assert code == 2 and out == ""
    assert "line 2: to:" in err and "line 3: not valid JSON" in err
    assert "nothing enqueued" in err
    assert producer.store.records.dbsize() == 0

    code, out, err = run(capsys, "bulk", str(path), "--skip-invalid")
    rows = [row.split("\t") for row in out.splitlines()]
    assert code == 0 and [line for line, _ in rows] == ["1", "4"]
    assert all(producer.get_status(job_id) is not None for _, job_id in rows)
    assert "skipped 2 invalid" in err


def test_bulk_dry_run_prints_every_line_and_enqueues_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, producer: Producer
) -> None:
    path = write_lines(tmp_path / "messages.jsonl", [wire_message(), wire_message()])
    code, out, _ = run(capsys, "bulk", str(path), "--dry-run")
    rows = [json.loads(row) for row in out.splitlines()]
    assert code == 0 and [row["line"] for row in rows] == [1, 2]
    assert rows[0]["message"]["submissionStatus"] is False
    assert producer.store.records.dbsize() == 0


def test_bulk_reads_csv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "messages.csv"
    path.write_text(
        "to,phone_id,body,button1,button2,footer\n"
        "919876543210,1234,Hi?,yes=Yes,No,\n"
        "919876543211,1234,Hi?,,,too many buttons? none at all\n"
    )
    code, out, err = run(capsys, "bulk", str(path), "--json", "--skip-invalid")
    assert code == 0 and json.loads(out)["line"] == 2
    assert "line 3: interactive.action.buttons" in err


def test_status_of_an_unknown_job_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "nope")
    assert code == 1 and "no job nope" in err


def test_status_of_many_jobs_and_a_wait_that_times_out(
    capsys: pytest.CaptureFixture[str], producer: Producer
) -> None:
    job_ids = producer.enqueue_many([wire_message(), wire_message()])
    code, out, err = run(capsys, "status", *job_ids, "--json", "--wait", "--timeout", "0.3")
    assert [json.loads(row)["job_id"] for row in out.splitlines()] == job_ids
    assert code == 1 and "not every job finished in 0.3 s" in err


def test_dead_letters_list_show_replay_and_purge(
    capsys: pytest.CaptureFixture[str], producer: Producer
) -> None:
    job_id = producer.enqueue(wire_message())
    letters = DeadLetters(producer.store, producer.settings.queue)
    letters.add(DeadLetter(id=job_id, job_id=job_id, reason="HTTP 400: window closed"))
    letters.add(DeadLetter.for_poison("undecodable message", b"\xff"))

    code, out, err = run(capsys, "dead", "list", "--match", "window")
    assert code == 0 and out.startswith(job_id) and "poison" not in out
    code, out, _ = run(capsys, "dead", "show", job_id)
    assert code == 0 and json.loads(out)["reason"] == "HTTP 400: window closed"
    code, out, _ = run(capsys, "dead", "replay", job_id)
    assert code == 0 and out.strip() == job_id
    status = producer.get_status(job_id)
    assert status is not None and status.replays == 1
    code, _, err = run(capsys, "dead", "purge", "--all")
    assert code == 0 and "purged 1" in err
    assert letters.entries() == []


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["dead", "show", "nope"], 1, "no dead letter: nope"),
        (["dead", "replay", "nope"], 1, "not replayed"),
        (["dead", "purge", "nope"], 1, "no dead letter: nope"),
        (["dead", "replay"], 2, "name dead letters by id, or use --all"),
        (["dead", "purge", "x", "--all"], 2, "name dead letters by id, or use --all"),
        (["dead", "replay", "x", "--match", "window"], 2, "with --match"),
    ],
)
def test_dead_letter_mistakes(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    got, _, err = run(capsys, *argv)
    assert got == code and message in err


def test_help_lists_the_configuration_and_never_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZIXFLOW_API_KEY", "zx-live-0123456789")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for variable, default, _ in environment_variables(WorkerSettings):
        assert any(line.split()[:2] == [variable, default] for line in out.splitlines()), variable
    assert "zx-live-0123456789" not in out


def test_demo_refuses_the_real_api_without_a_recipient_of_ones_own(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZIXFLOW_API_KEY", "zx-live-0123456789")
    monkeypatch.setenv("ZIXFLOW_BASE_URL", "https://api.zixflow.com")
    code, out, err = run(capsys, "demo", "--count", "5")
    assert code == 2 and out == ""
    assert "--to and --phone-id" in err and "zx-live-0123456789" not in err


def test_sandbox_serves_with_the_flags_of_python_m_worker_sandbox() -> None:
    port = free_port()
    command = [str(Path(sys.executable).with_name("zixflow-queue")), "sandbox", "--port",
               str(port), "--api-key", "k", "--rate", "error500=1"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/_sandbox/faults"
    with subprocess.Popen(command, stderr=subprocess.DEVNULL) as server, requests.Session() as web:
        try:
            plan = wait_until(lambda: _get_json(web, url), timeout=20, what="the sandbox")
            assert plan["rates"] == {"error500": 1.0}
        finally:
            server.terminate()
        assert server.wait(timeout=10) == 0


def _get_json(web: requests.Session, url: str) -> dict[str, object] | None:
    try:
        answer: dict[str, object] = web.get(url, timeout=1).json()
    except requests.ConnectionError:
        return None
    return answer
