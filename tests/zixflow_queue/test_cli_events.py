"""`zixflow-queue replies list` and `zixflow-queue events list|replay|purge`, in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from producer.enqueue import Producer, default_producer
from producer.record import EventField
from producer.store import connection_options
from tests.zixflow_queue.conftest import CliResult, clear_caches
from tests.zixflow_queue.test_replies import offering, sent, tap, zixflow_event
from zixflow_queue.replies import InboundRecorder, read_event

Run = Callable[..., CliResult]
JOB = "0123456789abcdef0123456789abcdef"
URL = "https://app.example/hooks"


# --- replies list ---


@pytest.fixture
def replies_producer(cli_environment: None, monkeypatch: pytest.MonkeyPatch) -> Producer:
    """The command line's producer, on the queue `sent` (test_replies) records its jobs in."""
    monkeypatch.setenv("ZQ_QUEUE", "zq-replies")
    clear_caches()
    return default_producer()


def keep(producer: Producer, *events: Any) -> list[str]:
    """Have the service's recorder keep these events, in order; their outcomes."""

    async def record() -> list[str]:
        client = redis.asyncio.Redis.from_url(producer.settings.redis_url, **connection_options(5))
        recorder = InboundRecorder(client, producer.settings)
        try:
            return [await recorder.record(json.dumps(e), read_event(e)) for e in events]
        finally:
            await client.aclose()

    return asyncio.run(record())


def test_replies_list_shows_the_newest_events_first_with_what_became_of_them(
    replies_producer: Producer, run: Run
) -> None:
    job_id = sent(replies_producer, asyncio.run, offering("yes", "no"))
    outcomes = keep(
        replies_producer, zixflow_event(tap("yes", "Yes"), eventId="e-1"),
        zixflow_event(tap("gone", "Old"), eventId="e-2"),
        zixflow_event({"type": "text", "text": {"body": "thanks"}}, eventId="e-3"),
        {"not": "an event"},
    )  # fmt: skip
    assert outcomes == ["matched", "unmatched", "other", "unknown"]

    code, out, err = run("replies", "list")
    assert (code, err) == (0, "4 event(s)\n")
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0][0].startswith("unreadable-")  # an event without an id gets one
    assert [cells[0] for cells in lines][1:] == ["e-3", "e-2", "e-1"]
    assert [cells[2:] for cells in lines] == [
        ["unknown", "-", "-", "-"],
        ["other", "919876543210", "-", "-"],
        ["unmatched", "919876543210", "Old", "-"],
        ["matched", "919876543210", "Yes", job_id],
    ]


def test_replies_list_narrows_by_outcome_and_limit_and_speaks_json(
    replies_producer: Producer, run: Run
) -> None:
    events = [zixflow_event(tap(f"b{n}", "B"), eventId=f"e-{n}") for n in range(5)]
    keep(replies_producer, *events, {"garbage": 1})
    code, out, _ = run("replies", "list", "--outcome", "unmatched", "--limit", "2", "--json")
    assert code == 0
    shown = [json.loads(line) for line in out.splitlines()]
    assert [event["event_id"] for event in shown] == ["e-4", "e-3"]
    assert json.loads(shown[0]["event"]) == events[4]
    code, out, _ = run("replies", "list", "--outcome", "unknown")
    assert (code, len(out.splitlines())) == (0, 1)


def test_replies_list_wants_a_limit_of_at_least_one(cli_environment: None, run: Run) -> None:
    code, _, err = run("replies", "list", "--limit", "0")
    assert (code, err) == (2, "error: --limit must be at least 1, got 0\n")


@pytest.mark.parametrize("argv", [["--outcome", "duplicate"], ["--limit", "many"]])
def test_replies_list_refuses_flags_it_cannot_read(
    cli_environment: None, run: Run, argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("replies", "list", *argv)
    assert exit_info.value.code == 2


# --- events list | replay | purge ---


@pytest.fixture
def failed(producer: Producer, real_redis: redis.Redis) -> list[str]:
    """Three status events that failed for good, as end_events.lua leaves them; oldest first."""
    keys = producer.keys
    ids = []
    endings = [("message.sent", "HTTP 410 from the callback URL"),
               ("message.failed", "no answer: TimeoutError"),
               ("message.replied", "HTTP 404 from the callback URL")]  # fmt: skip
    for n, (kind, error) in enumerate(endings):
        event_id = f"{JOB}.{kind}" + (".e-9" if kind == "message.replied" else "")
        real_redis.hset(keys.event(event_id), mapping={
            EventField.TYPE: kind, EventField.JOB_ID: JOB, EventField.URL: URL,
            EventField.CREATED_AT: 1_800_000_000 + n, EventField.ATTEMPTS: 12,
            EventField.ERROR: error, EventField.BODY: json.dumps({"type": kind}),
        })  # fmt: skip
        real_redis.zadd(keys.events_dead, {event_id: 1_800_000_100 + n})
        ids.append(event_id)
    return ids


def test_events_list_shows_each_failed_event_newest_first(failed: list[str], run: Run) -> None:
    code, out, err = run("events", "list")
    assert (code, err) == (0, "3 failed status event(s)\n")
    lines = [line.split("\t") for line in out.splitlines()]
    assert [cells[0] for cells in lines] == failed[::-1]
    assert lines[2][1:] == ["2027-01-15 08:01:40", "message.sent", JOB, URL, "12",
                            "HTTP 410 from the callback URL"]  # fmt: skip
    code, out, _ = run("events", "list", "--json")
    first = json.loads(out.splitlines()[0])
    assert (first["id"], first["attempts"], first["type"]) == (failed[2], 12, "message.replied")


def test_events_replay_puts_them_back_with_a_fresh_budget_and_the_same_body(
    failed: list[str], run: Run, producer: Producer, real_redis: redis.Redis
) -> None:
    keys = producer.keys
    code, out, err = run("events", "replay", failed[0], failed[2])
    assert (code, out.split(), err) == (0, [failed[0], failed[2]], "replayed 2 status event(s)\n")
    assert real_redis.lrange(keys.events_ready, 0, -1) == [failed[2], failed[0]]
    assert real_redis.zrange(keys.events_dead, 0, -1) == [failed[1]]
    again = real_redis.hgetall(keys.event(failed[0]))
    assert (again["attempts"], "error" in again) == ("0", False)
    assert json.loads(again["body"]) == {"type": "message.sent"}
    assert real_redis.ttl(keys.event(failed[0])) > 0

    code, out, err = run("events", "replay", failed[0], "no-such-event")  # replayed already
    assert (code, out) == (1, "")
    assert f"not a failed status event (or expired): {failed[0]}, no-such-event" in err
    code, out, _ = run("events", "replay", "--all")
    assert (code, out.split()) == (0, [failed[1]])
    assert real_redis.zcard(keys.events_dead) == 0


def test_events_purge_deletes_them(
    failed: list[str], run: Run, producer: Producer, real_redis: redis.Redis
) -> None:
    code, out, _ = run("events", "purge", failed[1])
    assert (code, out.split()) == (0, [failed[1]])
    assert not real_redis.exists(producer.keys.event(failed[1]))
    code, out, err = run("events", "purge", "--all", "--json")
    assert code == 0 and err == "purged 2 status event(s)\n"
    assert [json.loads(line)["id"] for line in out.splitlines()] == [failed[0], failed[2]]
    assert real_redis.zcard(producer.keys.events_dead) == 0
    assert real_redis.llen(producer.keys.events_ready) == 0


def test_an_expired_event_is_not_listed_nor_replayed(
    failed: list[str], run: Run, producer: Producer, real_redis: redis.Redis
) -> None:
    real_redis.delete(producer.keys.event(failed[1]))  # its hash ran out of time
    assert run("events", "list")[2] == "2 failed status event(s)\n"
    assert run("events", "replay", failed[1])[0] == 1
    assert real_redis.llen(producer.keys.events_ready) == 0


@pytest.mark.parametrize("argv", [["replay"], ["purge"], ["replay", "x", "--all"]])
def test_events_actions_want_ids_or_all(cli_environment: None, run: Run, argv: list[str]) -> None:
    code, _, err = run("events", *argv)
    assert (code, err) == (2, "error: name failed events by id, or use --all\n")
