"""Enqueueing on fakeredis: records, task messages, idempotency, batches, status."""

from __future__ import annotations

import json
from typing import cast

import pytest

from producer import IdempotencyConflict, Producer, ValidationError, keys
from tests.support import queued_job_ids, wire_message, wire_messages


def test_enqueue_writes_record_then_one_task(fake_producer: Producer) -> None:
    job_id = fake_producer.enqueue(wire_message())

    record = fake_producer.store.records.hgetall(keys.job(job_id))
    assert record["state"] == "queued"
    assert record["attempts"] == "0"
    assert json.loads(record["message"])["source"] == "API"
    assert fake_producer.store.records.ttl(keys.job(job_id)) == fake_producer.settings.record_ttl
    assert queued_job_ids(fake_producer.store, "zq-test") == [[job_id]]


def test_task_message_names_the_delivery_task(fake_producer: Producer) -> None:
    fake_producer.enqueue(wire_message())
    raw = json.loads(cast(str, fake_producer.store.broker.lindex("zq-test", 0)))
    assert raw["headers"]["task"] == keys.TASK_NAME
    assert raw["content-type"] == "application/json"
    assert raw["properties"]["delivery_info"]["routing_key"] == "zq-test"


def test_wire_message_has_defaults_and_no_nulls(fake_producer: Producer) -> None:
    job_id = fake_producer.enqueue(wire_message(to="+91 98765-43210"))
    sent = json.loads(cast(str, fake_producer.store.records.hget(keys.job(job_id), "message")))
    assert sent["to"] == "919876543210"
    assert sent["type"] == "interactive"
    assert sent["interactive"]["type"] == "button"
    assert (sent["source"], sent["linkWithRecord"], sent["submissionStatus"]) == (
        "API",
        False,
        False,
    )
    assert "null" not in json.dumps(sent)


def test_invalid_message_is_refused_and_nothing_is_queued(fake_producer: Producer) -> None:
    bad = wire_message()
    bad["interactive"]["action"]["buttons"] = []  # type: ignore[index]
    with pytest.raises(ValidationError, match=r"interactive\.action\.buttons"):
        fake_producer.enqueue(bad)
    assert fake_producer.store.records.dbsize() == 0


def test_same_idempotency_key_and_message_give_the_same_job(fake_producer: Producer) -> None:
    first = fake_producer.enqueue(wire_message(), idempotency_key="order-42")
    again = fake_producer.enqueue(wire_message(), idempotency_key="order-42")
    assert first == again
    assert queued_job_ids(fake_producer.store, "zq-test") == [[first]]


def test_same_idempotency_key_with_another_message_is_refused(fake_producer: Producer) -> None:
    fake_producer.enqueue(wire_message(), idempotency_key="order-42")
    with pytest.raises(IdempotencyConflict, match="order-42"):
        fake_producer.enqueue(wire_message(to="919800000001"), idempotency_key="order-42")
    assert len(queued_job_ids(fake_producer.store, "zq-test")) == 1


def test_enqueue_many_chunks_jobs_into_tasks(fake_producer: Producer) -> None:
    messages = wire_messages(250)
    job_ids = fake_producer.enqueue_many(messages)

    assert len(set(job_ids)) == 250
    chunks = queued_job_ids(fake_producer.store, "zq-test")
    assert [len(chunk) for chunk in chunks] == [100, 100, 50]
    assert [job for chunk in chunks for job in chunk] == job_ids
    for job_id, message in zip(job_ids, messages, strict=True):
        record = fake_producer.store.records.hgetall(keys.job(job_id))
        assert record["to"] == message["to"]


def test_enqueue_many_refuses_the_whole_batch_naming_bad_items(fake_producer: Producer) -> None:
    messages = [wire_message(), wire_message(to="12"), wire_message(), wire_message(phoneId="")]
    with pytest.raises(ValidationError) as refused:
        fake_producer.enqueue_many(messages)
    assert {problem.item for problem in refused.value.problems} == {1, 3}
    assert "item 1" in str(refused.value) and "item 3" in str(refused.value)
    assert fake_producer.store.records.dbsize() == 0


def test_enqueue_many_of_nothing_queues_nothing(fake_producer: Producer) -> None:
    assert fake_producer.enqueue_many([]) == []
    assert fake_producer.store.records.dbsize() == 0
