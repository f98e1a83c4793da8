"""Zixflow's incoming-message events: read in every known shape, kept once, put on their job."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import redis.asyncio

from producer import Producer
from producer.settings import ProducerSettings
from producer.store import Store, connection_options
from tests.support import wire_message
from worker.jobs import Ending, Finish, JobRecords, Wakeups
from worker.settings import WorkerSettings
from zixflow_queue.replies import InboundRecorder, read_event
from zixflow_queue.replies.inbound import BUTTON, OTHER, UNKNOWN

PHONE_ID, SENDER = "106540352242922", "919876543210"


def zixflow_event(message: object = None, **envelope: Any) -> dict[str, Any]:
    """An incoming.whatsapp.message event as Zixflow posts it."""
    event = {
        "event": "incoming.whatsapp.message", "eventId": "0b6f6a44-3c7e-4c1e-9d0b-1f2e3d4c5b6a",
        "timestamp": 1764597600123, "phoneId": PHONE_ID, "wabaId": "2093847561",
        "messageId": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgg", "sender": {"name": "Asha",
        "number": "+91 98765-43210"}, "message": message,
    }  # fmt: skip
    return {**event, **envelope}


def tap(button_id: str, title: str) -> dict[str, Any]:
    """WhatsApp's shape of an interactive button reply."""
    reply = {"id": button_id, "title": title}
    return {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": reply}}


def test_an_interactive_button_reply_is_read() -> None:
    read = read_event(zixflow_event(tap("yes-42", "Yes")))
    assert (read.kind, read.button_id, read.title) == (BUTTON, "yes-42", "Yes")
    assert (read.phone_id, read.sender) == (PHONE_ID, SENDER)  # normalised as the producer does
    assert read.at == datetime(2025, 12, 1, 14, 0, 0, 123000, tzinfo=UTC)


def test_a_template_quick_reply_is_read_as_a_button() -> None:
    message = {"type": "button", "button": {"payload": "later-42", "text": "Another day"}}
    read = read_event(zixflow_event(message))
    assert (read.kind, read.button_id, read.title) == (BUTTON, "later-42", "Another day")


@pytest.mark.parametrize(
    "message",
    [{"type": "text", "text": {"body": "thanks"}}, None, {"type": "interactive"}, "text"],
    ids=["text", "event only", "no reply inside", "not an object"],
)
def test_other_messages_are_read_as_other(message: object) -> None:
    read = read_event(zixflow_event(message))
    assert (read.kind, read.event_id) == (OTHER, "0b6f6a44-3c7e-4c1e-9d0b-1f2e3d4c5b6a")


@pytest.mark.parametrize(
    "event",
    [zixflow_event(tap("y", "Y"), eventId=None), zixflow_event(tap("y", "Y"), sender={}),
     zixflow_event(tap("y", "Y"), sender={"number": "12"}), [1, 2], "x"],
    ids=["no event id", "no sender", "not a number", "a list", "a string"],
)  # fmt: skip
def test_unreadable_envelopes_are_unknown(event: object) -> None:
    assert read_event(event).kind == UNKNOWN


# --- kept and matched, on the real Redis ---


@pytest.fixture
def producer(redis_url: str) -> Producer:
    settings = ProducerSettings(redis_url=redis_url, queue="zq-replies", prefix=None,
                                callback_url="http://127.0.0.1:9/hooks")  # fmt: skip
    return Producer(settings, Store.connect(settings))


@pytest.fixture
def run() -> Iterator[Callable[..., Any]]:
    with asyncio.Runner() as runner:
        yield runner.run


def sent(producer: Producer, run: Callable[..., Any], message: dict[str, object]) -> str:
    """A job enqueued and recorded as sent, as a worker does."""
    job_id = producer.enqueue(message)
    settings = WorkerSettings(redis_url=producer.settings.redis_url, queue="zq-replies")

    async def send() -> None:
        client = redis.asyncio.Redis.from_url(settings.redis_url, **connection_options(5))
        jobs = JobRecords(client, settings, "w1", Wakeups(settings, None))
        await jobs.take(10)
        await jobs.claim([job_id])
        await jobs.finish([Finish(job_id, 1, Ending.SENT, "sent")])
        await client.aclose()

    run(send())
    return job_id


def offering(*buttons: str) -> dict[str, object]:
    message = wire_message(to=SENDER, phoneId=PHONE_ID)
    message["interactive"]["action"]["buttons"] = [  # type: ignore[index]
        {"type": "reply", "reply": {"id": button, "title": button.title()}} for button in buttons
    ]
    return message


def record(producer: Producer, run: Callable[..., Any], event: dict[str, Any]) -> str:
    client = redis.asyncio.Redis.from_url(producer.settings.redis_url, **connection_options(5))
    recorder = InboundRecorder(client, producer.settings)

    async def keep() -> str:
        try:
            return await recorder.record(json.dumps(event), read_event(event))
        finally:
            await client.aclose()

    outcome: str = run(keep())
    return outcome


def test_a_reply_lands_on_the_job_that_offered_the_button(
    producer: Producer, run: Callable[..., Any], real_redis: redis.Redis
) -> None:
    first = sent(producer, run, offering("yes-1", "no-1"))
    second = sent(producer, run, offering("yes-2", "no-2"))
    assert record(producer, run, zixflow_event(tap("yes-1", "Yes"))) == "matched"

    replied = producer.get_status(first)
    assert replied is not None and replied.reply is not None
    assert (replied.reply["id"], replied.reply["title"]) == ("yes-1", "Yes")
    assert replied.reply["at"] == "2025-12-01T14:00:00.123000+00:00"
    untouched = producer.get_status(second)
    assert untouched is not None and untouched.reply is None
    event_id = f"{first}.message.replied.0b6f6a44-3c7e-4c1e-9d0b-1f2e3d4c5b6a"
    assert event_id in real_redis.lrange(producer.keys.events_ready, 0, -1)


def test_the_latest_job_offering_a_button_id_gets_the_reply(
    producer: Producer, run: Callable[..., Any]
) -> None:
    earlier = sent(producer, run, offering("confirm"))
    latest = sent(producer, run, offering("confirm"))
    record(producer, run, zixflow_event(tap("confirm", "Confirm")))
    statuses = producer.get_statuses([earlier, latest])
    assert [s.reply is not None for s in statuses if s] == [False, True]


def test_a_repeated_event_counts_once_and_others_are_kept(
    producer: Producer, run: Callable[..., Any], real_redis: redis.Redis
) -> None:
    sent(producer, run, offering("yes"))
    event = zixflow_event(tap("yes", "Yes"))
    assert [record(producer, run, event) for _ in range(3)] == ["matched", "duplicate", "duplicate"]
    stranger = zixflow_event(tap("yes", "Yes"), eventId="e-2", sender={"number": "14155550100"})
    assert record(producer, run, stranger) == "unmatched"
    assert record(producer, run, zixflow_event({"type": "sticker"}, eventId="e-3")) == "other"
    assert record(producer, run, {"garbage": True}) == "unknown"

    stats: dict[str, str] = real_redis.hgetall(producer.keys.stats)  # type: ignore[assignment]
    assert {k: v for k, v in stats.items() if k.startswith("inbound:")} == {
        "inbound:matched": "1", "inbound:duplicate": "2", "inbound:unmatched": "1",
        "inbound:other": "1", "inbound:unknown": "1",
    }  # fmt: skip
    assert real_redis.zcard(producer.keys.inbound_index) == 4  # every distinct event is kept
    kept = real_redis.hgetall(producer.keys.inbound("e-2"))
    assert (kept["outcome"], json.loads(kept["event"])["eventId"]) == ("unmatched", "e-2")
