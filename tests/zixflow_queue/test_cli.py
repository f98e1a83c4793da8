"""The command line, on the tests' real Redis database (bulk's file reading: test_cli_files.py)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from producer.deadletters import DeadLetter, DeadLetters
from producer.enqueue import Producer
from producer.errors import OutcomeUnknown
from producer.settings import environment_variables
from tests.support import wait_until, wire_message
from tests.zixflow_queue.conftest import CliResult, clear_caches
from worker.settings import WorkerSettings
from zixflow_queue import cli
from zixflow_queue.demo.processes import free_port

pytestmark = pytest.mark.usefixtures("cli_environment")

Run = Callable[..., CliResult]
SEND = ["send", "--to", "+91 98765 43210", "--phone-id", "123456", "--body", "Deliver?"]
WINDOW = (
    "HTTP 400: (#131047) Re-engagement message :: Message failed to send because more than 24 "
    "hours have passed since the customer last replied to this number."
)
ZIXFLOW_QUEUE = str(Path(sys.executable).with_name("zixflow-queue"))


def unknown_id() -> str:
    """A well-formed job id that no job has."""
    return uuid.uuid4().hex


def set_record(producer: Producer, job_id: str, **fields: str) -> None:
    """Write fields of a job's record, as a worker or the reply webhook would."""
    mapping: Mapping[Any, str] = fields
    producer.store.records.hset(producer.settings.keys.job(job_id), mapping=mapping)


def test_send_dry_run_prints_the_wire_message(run: Run, producer: Producer) -> None:
    code, out, _ = run(*SEND, "--button", "yes=Yes", "--button", "No", "--dry-run")
    assert code == 0
    wire = json.loads(out)
    assert (wire["to"], wire["type"], wire["source"]) == ("919876543210", "interactive", "API")
    assert wire["interactive"]["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
        {"type": "reply", "reply": {"id": "No", "title": "No"}},
    ]
    assert producer.store.records.dbsize() == 0


@pytest.mark.parametrize(
    ("media_form", "image"),
    [(None, "https://example.com/a.png"), ("string", "https://example.com/a.png"),
     ("object", {"link": "https://example.com/a.png"})],
)  # fmt: skip
def test_dry_runs_print_what_the_worker_sends_in_its_media_form(
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    media_form: str | None,
    image: object,
) -> None:
    if media_form:
        monkeypatch.setenv("ZQ_MEDIA_FORM", media_form)
    header = ["--header-image", "https://example.com/a.png", "--button", "Yes", "--dry-run"]
    code, out, _ = run(*SEND, *header)
    assert code == 0 and json.loads(out)["interactive"]["header"]["image"] == image
    message = wire_message(interactive={
        "header": {"type": "image", "image": "https://example.com/a.png"},
        "body": {"text": "Hi"}, "action": {"buttons": [{"reply": {"id": "y", "title": "Yes"}}]},
    })  # fmt: skip
    path = tmp_path / "messages.jsonl"
    path.write_text(json.dumps(message) + "\n")
    code, out, _ = run("bulk", str(path), "--dry-run")
    assert code == 0 and json.loads(out)["message"]["interactive"]["header"]["image"] == image


def test_a_bad_media_form_is_one_line_naming_the_variable(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZQ_MEDIA_FORM", "link")
    code, out, err = run(*SEND, "--button", "Yes", "--dry-run")
    assert (code, out) == (2, "")
    assert err.startswith("error: ZQ_MEDIA_FORM='link': ") and err.count("\n") == 1


def test_send_enqueues_and_status_reads_it(run: Run) -> None:
    code, out, _ = run(*SEND, "--button", "Yes", "--json")
    job_id = json.loads(out)["job_id"]
    assert code == 0
    code, out, _ = run("status", job_id, "--json")
    assert code == 0 and json.loads(out)["state"] == "queued"


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_send_reads_a_wire_message(
    run: Run,
    stdin: Callable[[bytes], None],
    tmp_path: Path,
    producer: Producer,
    source: str,
) -> None:
    text = json.dumps(wire_message(to="919800000001"))
    path = tmp_path / "message.json"
    path.write_text(text)
    stdin(text.encode())
    code, out, _ = run("send", "--file", str(path) if source == "file" else "-")
    status = producer.get_status(out.strip())
    assert code == 0 and status is not None and status.state == "queued"


def test_idempotency_key_gives_the_same_job(run: Run) -> None:
    first = run(*SEND, "--button", "Yes", "--idempotency-key", "order-7")
    again = run(*SEND, "--button", "Yes", "--idempotency-key", "order-7")
    assert first[0] == again[0] == 0 and first[1] == again[1]


def test_an_idempotency_key_reused_for_another_message_exits_2(run: Run) -> None:
    assert run(*SEND, "--button", "Yes", "--idempotency-key", "order-8")[0] == 0
    code, out, err = run(*SEND, "--button", "No", "--idempotency-key", "order-8")
    assert (code, out) == (2, "")
    assert "'order-8' was already used with a different message" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([*SEND, "--button", "x" * 21], ["interactive.action.buttons.0.reply.title", "at most 20"]),
        ([*SEND, "--button", "A", "--button", "B", "--button", "C", "--button", "D"],
         ["interactive.action.buttons"]),
        (["send", "--to", "12", "--phone-id", "1", "--body", "Hi", "--button", "Yes"], ["to:"]),
        (["send", "--to", "919876543210"], ["missing --phone-id, --body, --button"]),
        (["send", "--file", "x.json", "--to", "919876543210"], ["leave out --to"]),
        (["send", "--file", "missing.json"], ["cannot read missing.json: No such file"]),
        (["send", "--file", "."], ["cannot read .: Is a directory"]),
        (["bulk", "missing.jsonl"], ["cannot read missing.jsonl: No such file"]),
        (["demo", "--to", "919876543210"], ["--to and --phone-id go together"]),
    ],
)  # fmt: skip
def test_bad_input_exits_2_and_says_what_is_wrong(
    run: Run, producer: Producer, argv: list[str], expected: list[str]
) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert all(text in err for text in expected), err
    assert producer.store.records.dbsize() == 0


def test_a_file_that_is_not_json_exits_2(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "message.json"
    path.write_text("{not json")
    code, _, err = run("send", "--file", str(path))
    assert code == 2 and f"error: {path}: not valid JSON" in err


def test_redis_down_exits_1_and_says_a_retry_is_safe(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    clear_caches()
    code, out, err = run(*SEND, "--button", "Yes")
    assert code == 1 and out == ""
    assert "Redis is unreachable" in err and "nothing was stored" in err
    assert err.splitlines()[-1] == "safe to retry"


@pytest.mark.parametrize(
    ("key", "advice"),
    [(["--idempotency-key", "order 9"], "retry with the same --idempotency-key 'order 9'"),
     ([], "a retry could send them twice; give --idempotency-key")],
)  # fmt: skip
def test_an_unknown_outcome_says_how_to_retry(
    run: Run, monkeypatch: pytest.MonkeyPatch, key: list[str], advice: str
) -> None:
    def lost_answer(*_: object, **__: object) -> list[str]:
        raise OutcomeUnknown("could not enqueue the jobs: the answer did not come back")

    monkeypatch.setattr(Producer, "enqueue_jobs", lost_answer)
    code, out, err = run(*SEND, "--button", "Yes", *key)
    assert (code, out) == (1, "")
    assert err.startswith("error: could not enqueue the jobs") and advice in err


def test_a_configuration_error_is_one_line_and_exits_2() -> None:
    env = {**os.environ, "REDIS_URL": "localhost:6379"}
    result = subprocess.run([ZIXFLOW_QUEUE, "status", unknown_id()], env=env, check=False,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: REDIS_URL=") and result.stderr.count("\n") == 1


def test_status_of_an_unknown_job_exits_1(run: Run) -> None:
    job_id = unknown_id()
    code, _, err = run("status", job_id, "nope")
    assert code == 1
    assert f"error: {job_id}: no such job" in err
    assert "error: nope: no such job (a job id is 32 hex digits)" in err


def test_status_of_many_jobs_and_a_wait_that_times_out(run: Run, producer: Producer) -> None:
    job_ids = producer.enqueue_many([wire_message(), wire_message()])
    code, out, err = run("status", *job_ids, "--json", "--wait", "--timeout", "0.3")
    assert [json.loads(row)["job_id"] for row in out.splitlines()] == job_ids
    assert code == 1 and "not every job finished in 0.3 s" in err


@pytest.mark.parametrize(
    ("state", "code"),
    [("scheduled", 0), ("queued", 0), ("sending", 0), ("retrying", 0), ("sent", 0),
     ("canceled", 0), ("failed", 1)],
)  # fmt: skip
def test_status_exits_1_only_for_a_failed_job(
    run: Run, producer: Producer, state: str, code: int
) -> None:
    job_id = producer.enqueue(wire_message())
    set_record(producer, job_id, state=state)
    got, out, _ = run("status", job_id)
    assert got == code and out.split("\t")[:2] == [job_id, state]


def test_status_shows_the_reply(run: Run, producer: Producer) -> None:
    job_id = producer.enqueue(wire_message())
    reply = {"id": "yes", "title": "Yes", "at": "2026-01-02T03:04:05+00:00"}
    set_record(producer, job_id, state="sent", reply=json.dumps(reply))
    code, out, _ = run("status", job_id)
    assert code == 0 and "\treply=Yes" in out
    code, out, _ = run("status", job_id, "--json")
    assert json.loads(out)["reply"] == reply


@pytest.mark.parametrize("when", ["+90s", "+15m", "+2h", "+1d", "{india}", "{utc}Z"])
def test_send_at_schedules_the_job(run: Run, producer: Producer, when: str) -> None:
    due = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    india = due.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    text = when.format(india=india, utc=due.replace(tzinfo=None).isoformat())
    code, out, err = run(*SEND, "--button", "Yes", "--at", text)
    assert code == 0 and "scheduled: due " in err
    job_id = out.strip()
    status = producer.get_status(job_id)
    assert status is not None and status.state == "scheduled" and status.send_at is not None
    if not when.startswith("+"):
        assert status.send_at == due
    code, out, _ = run("status", job_id)
    due_at = status.send_at.isoformat(timespec="seconds")
    assert (code, out) == (0, f"{job_id}\tscheduled\tattempts=0\tdue={due_at}\n")


@pytest.mark.parametrize(
    ("when", "message"),
    [("2030-12-24T09:00:00", "'2030-12-24T09:00:00' has no timezone: add one, e.g. "
      "2030-12-24T09:00:00+05:30, or 2030-12-24T09:00:00Z for UTC"),
     ("tomorrow", "must be an ISO 8601 time with a timezone"),
     ("+2w", "or a delay from now (+90s, +15m, +2h, +1d), got '+2w'")],
)  # fmt: skip
def test_send_at_refuses_a_time_it_cannot_place(
    capsys: pytest.CaptureFixture[str], when: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*SEND, "--button", "Yes", "--at", when])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --at: " in err and message in err


def test_bulk_at_schedules_every_job(run: Run, producer: Producer, tmp_path: Path) -> None:
    path = tmp_path / "messages.jsonl"
    path.write_text("\n".join(json.dumps(wire_message(to=f"91980000000{n}")) for n in range(2)))
    code, out, _ = run("bulk", str(path), "--at", "+1h")
    job_ids = [row.split("\t")[1] for row in out.splitlines()]
    statuses = producer.get_statuses(job_ids)
    assert code == 0 and [s.state if s else None for s in statuses] == ["scheduled"] * 2


@pytest.mark.parametrize("command", ["send", "bulk"])
def test_job_options_the_producer_refuses_are_told_once_by_flag(
    run: Run, producer: Producer, tmp_path: Path, command: str
) -> None:
    path = tmp_path / "messages.jsonl"
    path.write_text("\n".join(json.dumps(wire_message(to=f"91980000000{n}")) for n in range(3)))
    message = [*SEND, "--button", "Yes"] if command == "send" else ["bulk", str(path)]
    code, out, err = run(*message, "--at", "+30d", "--idempotency-key", "k" * 256)
    assert (code, out) == (2, "")
    assert re.fullmatch(
        r"error: --idempotency-key: must be at most 255 characters, got 256; --at: must be within "
        r"the record lifetime \(ZQ_RECORD_TTL, 7 days\) of now; got 259\d{4} seconds ahead\n",
        err,
    ), err
    assert producer.store.records.dbsize() == 0


def test_cancel_stops_jobs_and_names_those_it_cannot(run: Run, producer: Producer) -> None:
    first, second, sent = producer.enqueue_many([wire_message() for _ in range(3)])
    set_record(producer, sent, state="sent")
    missing = unknown_id()
    code, out, err = run("cancel", first, second, sent, missing)
    assert code == 1 and out.split() == [first, second]
    assert f"error: {sent}: sent, cannot be canceled" in err
    assert f"error: {missing}: no such job" in err
    assert [s.state if s else None for s in producer.get_statuses([first, second])] == [
        "canceled", "canceled"]  # fmt: skip
    code, out, _ = run("cancel", first, "--json")
    assert code == 1
    assert json.loads(out) == {"job_id": first, "canceled": False, "state": "canceled"}
    third = producer.enqueue(wire_message())
    code, out, err = run("cancel", third, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"job_id": third, "canceled": True, "state": "canceled"}


def test_dead_letters_list_show_replay_and_purge(run: Run, producer: Producer) -> None:
    job_id = producer.enqueue(wire_message())
    set_record(producer, job_id, state="failed", error=WINDOW)
    letters = DeadLetters(producer.store, producer.settings)
    letters.add(DeadLetter(id=job_id, job_id=job_id, reason=WINDOW, status_code=400))
    letters.add(DeadLetter.for_poison("undecodable message", b"\xff"))

    code, out, _ = run("dead", "list", "--match", "131047")
    assert code == 0 and out.startswith(job_id) and "poison" not in out
    code, out, _ = run("dead", "show", job_id)
    assert code == 0 and json.loads(out)["reason"] == WINDOW
    code, out, _ = run("dead", "replay", job_id)
    assert code == 0 and out.strip() == job_id
    status = producer.get_status(job_id)
    assert status is not None and status.replays == 1
    code, _, err = run("dead", "purge", "--all")
    assert code == 0 and "purged 1" in err
    assert letters.entries() == []


def test_dead_list_matches_zixflow_s_answer(run: Run, producer: Producer) -> None:
    letters = DeadLetters(producer.store, producer.settings)
    answer = {"status": False, "message": "Invalid phone number id"}
    job_id = unknown_id()
    letters.add(DeadLetter(id=job_id, job_id=job_id, reason="HTTP 422", last_response=answer))
    code, out, _ = run("dead", "list", "--match", "phone number id")
    assert code == 0 and out.split("\t")[0] == job_id


def test_json_output_is_one_object_per_line_in_every_command(
    run: Run, producer: Producer, tmp_path: Path
) -> None:
    job_id, failed = producer.enqueue_many([wire_message(), wire_message()])
    set_record(producer, failed, state="failed", error=WINDOW)
    DeadLetters(producer.store, producer.settings).add(
        DeadLetter(id=failed, job_id=failed, reason=WINDOW)
    )
    path = tmp_path / "messages.jsonl"
    path.write_text(json.dumps(wire_message()) + "\n" + json.dumps(wire_message()) + "\n")
    commands = [
        [*SEND, "--button", "Yes", "--dry-run"], [*SEND, "--button", "Yes"],
        ["bulk", str(path)], ["bulk", str(path), "--dry-run"], ["status", job_id],
        ["dead", "list"], ["dead", "show", failed, failed], ["dead", "replay", failed],
        ["dead", "purge", "--all"], ["cancel", job_id],
    ]  # fmt: skip
    for argv in commands:
        code, out, _ = run(*argv, "--json")
        lines = out.splitlines()
        assert code == 0 and lines, argv
        assert all(isinstance(json.loads(line), dict) for line in lines), argv


def test_help_lists_the_configuration_and_never_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZIXFLOW_API_KEY", "zx-live-0123456789")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for variable, default, meaning in environment_variables(WorkerSettings):
        row = next(line for line in out.splitlines() if line.split()[:1] == [variable])
        assert row.split()[:2] == [variable, default] and row.endswith(meaning), variable
    assert "zx-live-0123456789" not in out


@pytest.mark.parametrize(("variable", "default", "meaning"), environment_variables(WorkerSettings))
def test_every_setting_has_a_meaning(variable: str, default: str, meaning: str) -> None:
    assert meaning.strip(), f"{variable} has no description in its settings class"


@pytest.mark.parametrize(("count", "shown"), [("abc", "'abc'"), ("0", "'0'"), ("-3", "'-3'")])
def test_demo_count_must_be_a_whole_number_of_at_least_1(
    capsys: pytest.CaptureFixture[str], count: str, shown: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--count", count])
    assert exit_.value.code == 2
    expected = f"argument --count: must be a whole number of at least 1, got {shown}"
    assert expected in capsys.readouterr().err


def test_demo_refuses_the_real_api_without_a_recipient_of_ones_own(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZIXFLOW_API_KEY", "zx-live-0123456789")
    monkeypatch.setenv("ZIXFLOW_BASE_URL", "https://api.zixflow.com")
    code, out, err = run("demo", "--count", "5")
    assert code == 2 and out == ""
    assert "--to and --phone-id" in err and "zx-live-0123456789" not in err


def test_demo_with_a_bad_redis_url_is_one_line(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "localhost:6379")
    monkeypatch.delenv("ZIXFLOW_API_KEY", raising=False)
    code, out, err = run("demo", "--count", "1")
    assert (code, out) == (2, "")
    assert err.startswith("error: REDIS_URL='localhost:6379': ") and err.count("\n") == 1


def test_sandbox_serves_with_the_flags_of_python_m_zixflow_queue_sandbox() -> None:
    port = free_port()
    command = [ZIXFLOW_QUEUE, "sandbox", "--port", str(port), "--api-key", "k", "--rate",
               "error500=1"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/_sandbox/faults"
    with subprocess.Popen(command, stderr=subprocess.DEVNULL) as server, requests.Session() as web:
        try:
            plan = wait_until(lambda: _get_json(web, url), timeout=20, what="the sandbox")
            assert plan["rates"] == {"error500": 1.0}
        finally:
            server.terminate()
        assert server.wait(timeout=10) == 0


def test_sandbox_on_a_port_in_use_says_so_and_exits_2(run: Run) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        expected = f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"
        assert run("sandbox", "--port", str(port)) == (2, "", expected)


def _get_json(web: requests.Session, url: str) -> dict[str, object] | None:
    try:
        answer: dict[str, object] = web.get(url, timeout=1).json()
    except requests.ConnectionError:
        return None
    return answer
