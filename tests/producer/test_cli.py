"""The command line, on the tests' real Redis database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer import cli
from producer.deadletters import DeadLetter, DeadLetters
from producer.enqueue import default_producer
from producer.settings import producer_settings
from producer.store import default_store
from tests.support import wire_message


@pytest.fixture(autouse=True)
def environment(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ZQ_QUEUE", "zq-cli-test")
    for cached in (producer_settings, default_store, default_producer):
        cached.cache_clear()
    yield
    for cached in (producer_settings, default_store, default_producer):
        cached.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


SEND = ["send", "--to", "+91 98765 43210", "--phone-id", "123456", "--body", "Deliver?"]


def test_send_dry_run_prints_the_wire_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SEND, "--button", "yes=Yes", "--button", "No", "--dry-run")
    assert code == 0
    wire = json.loads(out)
    assert wire["to"] == "919876543210"
    assert wire["interactive"]["action"]["buttons"][1]["reply"] == {"id": "No", "title": "No"}
    assert default_producer().store.records.dbsize() == 0


def test_send_enqueues_and_status_reads_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SEND, "--button", "Yes", "--json")
    job_id = json.loads(out)["job_id"]
    assert code == 0
    code, out, _ = run(capsys, "status", job_id, "--json")
    assert code == 0 and json.loads(out)["state"] == "queued"


def test_invalid_send_names_the_field_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *SEND, "--button", "x" * 21)
    assert code == 2
    assert "interactive.action.buttons.0.reply.title" in err and "at most 20" in err


def test_send_without_enough_flags_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "send", "--to", "919876543210")
    assert code == 2 and "--phone-id" in err


def test_status_of_an_unknown_job_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "nope")
    assert code == 1 and "no job nope" in err


def test_bulk_with_a_bad_line_enqueues_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [wire_message(), wire_message(to="12"), wire_message(to="919800000003")]
    path = tmp_path / "messages.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    code, out, err = run(capsys, "bulk", str(path))
    assert code == 2 and out == ""
    assert "line 2: to:" in err
    assert default_producer().store.records.dbsize() == 0

    code, out, _ = run(capsys, "bulk", str(path), "--skip-invalid")
    assert code == 0
    assert [row.split("\t")[0] for row in out.splitlines()] == ["1", "3"]


def test_bulk_reads_csv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "messages.csv"
    path.write_text("to,phone_id,body,button1,button2\n919876543210,1234,Hi?,yes=Yes,No\n")
    code, out, _ = run(capsys, "bulk", str(path), "--json")
    assert code == 0 and json.loads(out)["line"] == 2


def test_dead_letters_list_replay_and_purge(capsys: pytest.CaptureFixture[str]) -> None:
    producer = default_producer()
    job_id = producer.enqueue(wire_message())
    letters = DeadLetters(producer.store, producer.settings.queue)
    letters.add(DeadLetter(id=job_id, job_id=job_id, reason="HTTP 400: window closed"))
    letters.add(DeadLetter.for_poison("undecodable message", b"\xff"))

    code, out, _ = run(capsys, "dead", "list", "--match", "window")
    assert code == 0 and job_id in out and "poison" not in out
    code, out, _ = run(capsys, "dead", "replay", job_id)
    assert code == 0 and out.strip() == job_id
    status = producer.get_status(job_id)
    assert status is not None and status.replays == 1
    code, _, err = run(capsys, "dead", "purge", "--all")
    assert code == 0 and "purged 1" in err
    assert letters.entries() == []


def test_help_lists_the_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "ZIXFLOW_API_KEY" in out and "ZQ_PHONE_RATE" in out
