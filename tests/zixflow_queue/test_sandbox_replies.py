"""The sandbox playing the recipients: Zixflow's reply events, posted after a delay, retried."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.test_events import Receiver
from tests.support import SANDBOX_KEY, send, wait_until, wire_message
from zixflow_queue.replies import read_event
from zixflow_queue.replies.inbound import BUTTON
from zixflow_queue.sandbox import FaultPlan, ReplyPlan, Sandbox, SandboxClient, recipient
from zixflow_queue.sandbox.__main__ import build_parser, main

TOKEN = "hook-token-51c2e8"


@pytest.fixture
def replying(receiver: Receiver) -> Iterator[Sandbox]:
    """A sandbox whose recipients all reply at once, to the receiver."""
    plan = ReplyPlan(url=receiver.url, token=TOKEN, rate=1, delay=(0, 0))
    with Sandbox(api_key=SANDBOX_KEY, replies=plan) as server:
        yield server


def offering(to: str, *buttons: tuple[str, str]) -> dict[str, Any]:
    message = wire_message(to=to)
    message["interactive"]["action"]["buttons"] = [  # type: ignore[index]
        {"type": "reply", "reply": {"id": button_id, "title": title}}
        for button_id, title in buttons
    ]
    return message


def settled(sandbox: Sandbox) -> dict[str, Any]:
    """The reply counts once no reply waits (due later, or in flight)."""
    replies: dict[str, Any] = wait_until(
        lambda: (counts := sandbox.stats()["replies"])["waiting"] == 0 and counts,
        what="every reply to be posted",
    )
    return replies


def test_each_accepted_message_gets_a_tap_on_one_of_its_buttons(
    replying: Sandbox, receiver: Receiver
) -> None:
    messages = {
        "919800000101": offering("919800000101", ("yes-1", "Yes"), ("no-1", "No")),
        "919800000102": offering("919800000102", ("a", "Morning"), ("b", "Noon"), ("c", "Night")),
        "919800000103": offering("919800000103", ("only", "OK")),
    }
    with requests.Session() as http:
        for message in messages.values():
            assert send(http, replying.url, message).status_code == 200
    wait_until(lambda: len(receiver.received) == 3, what="three replies")
    assert settled(replying) == {"posted": 3, "failed": 0, "retries": 0, "waiting": 0,
                                 "last_error": ""}  # fmt: skip
    for received in receiver.received:
        assert received.headers["X-Zixflow-Token"] == TOKEN
        assert received.headers["Content-Type"] == "application/json"
        event = read_event(body := json.loads(received.body))
        assert event.kind == BUTTON
        offered = messages[event.sender]["interactive"]["action"]["buttons"]
        assert {"id": event.button_id, "title": event.title} in [b["reply"] for b in offered]
        assert body["event"] == "incoming.whatsapp.message"
        assert uuid.UUID(body["eventId"]).version == 4
        assert len(str(body["timestamp"])) == 13
        assert body["phoneId"] == "1234567890" and body["messageId"].startswith("wamid.")
    assert len({r.body for r in receiver.received}) == 3


def test_no_reply_to_a_refused_message_or_at_a_rate_of_zero(
    replying: Sandbox, receiver: Receiver
) -> None:
    replying.configure(FaultPlan(script={"919800000201": ["window", "error500"]}))
    with requests.Session() as http:
        for _ in range(2):
            assert send(http, replying.url, wire_message(to="919800000201")).status_code != 200
        replying.configure_replies(ReplyPlan(url=receiver.url, token=TOKEN, rate=0))
        assert send(http, replying.url, wire_message(to="919800000202")).status_code == 200
    assert settled(replying)["posted"] == 0
    assert receiver.received == []


def test_a_reply_waits_its_delay_and_a_reset_drops_those_still_waiting(
    replying: Sandbox, receiver: Receiver
) -> None:
    replying.configure_replies(ReplyPlan(url=receiver.url, rate=1, delay=(0.4, 0.4)))
    with requests.Session() as http:
        sent_at = time.time()
        send(http, replying.url, wire_message(to="919800000301"))
        wait_until(lambda: receiver.received, what="the reply")
        assert time.time() - sent_at >= 0.4
        (received,) = receiver.received
        assert "X-Zixflow-Token" not in received.headers  # the plan has no token
        tapped = json.loads(received.body)["timestamp"] / 1000
        assert sent_at + 0.399 <= tapped < sent_at + 1  # in whole milliseconds

        replying.configure_replies(ReplyPlan(url=receiver.url, rate=1, delay=(60, 60)))
        send(http, replying.url, wire_message(to="919800000302"))
    assert replying.stats()["replies"]["waiting"] == 1
    replying.reset()
    assert replying.stats()["replies"] == {"posted": 0, "failed": 0, "retries": 0, "waiting": 0,
                                           "last_error": ""}  # fmt: skip


def test_a_failed_post_is_tried_again_with_the_same_event_then_given_up(
    replying: Sandbox, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recipient, "RETRY_DELAYS", (0.01, 0.01))
    receiver.script = [500, 401]
    with requests.Session() as http:
        send(http, replying.url, wire_message(to="919800000401"))
        wait_until(lambda: settled(replying)["posted"] == 1, what="the third try")
        assert len(receiver.received) == 3
        assert len({received.body for received in receiver.received}) == 1  # the same event

        receiver.script = [503, 503, 503]
        send(http, replying.url, wire_message(to="919800000402"))
    counts = wait_until(lambda: settled(replying)["failed"] == 1 and settled(replying))
    assert counts == {"posted": 1, "failed": 1, "retries": 4, "waiting": 0,
                      "last_error": "HTTP 503"}  # fmt: skip
    assert len(receiver.received) == 6


def test_the_reply_plan_is_set_through_the_control_api_and_never_shows_the_token(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    control = SandboxClient(sandbox.url)
    control.configure_replies(ReplyPlan(url=receiver.url, token=TOKEN, rate=0.25, delay=(1, 2)))
    shown = requests.get(sandbox.url + "/_sandbox/replies", timeout=10).json()
    assert shown == {"url": receiver.url, "token": "(set)", "rate": 0.25, "delay": [1.0, 2.0],
                     "seed": None}  # fmt: skip
    for bad in ({"rate": 2}, {"delay": [3, 1]}, {"delay": "1-2"}, {"url": "ftp://x"},
                {"token": 5}, {"colour": "red"}):  # fmt: skip
        answer = requests.put(sandbox.url + "/_sandbox/replies", json=bad, timeout=10)
        assert answer.status_code == 400, bad
        assert TOKEN not in answer.text
    assert requests.get(sandbox.url + "/_sandbox/replies", timeout=10).json() == shown


def test_the_command_line_takes_the_reply_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZQ_ZIXFLOW_WEBHOOK_TOKEN", "from-env")
    args = build_parser().parse_args(
        ["--reply-url", "http://127.0.0.1:8080/v1/zixflow/events", "--reply-rate", "0.4",
         "--reply-delay", "1-2.5"]
    )  # fmt: skip
    assert (args.reply_token, args.reply_rate, args.reply_delay) == ("from-env", 0.4, (1.0, 2.5))
    defaults = build_parser().parse_args([])
    assert (defaults.reply_url, defaults.reply_rate, defaults.reply_delay) == (None, 0.5, (0.5, 3))


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--reply-delay", "soon"], "--reply-delay: must be MIN-MAX seconds"),
     (["--reply-delay", "3-1"], "delay must be two finite seconds"),
     (["--reply-rate", "1.5"], "rate must be a number from 0 to 1"),
     (["--reply-url", "127.0.0.1:8080"], "url must be an http:// or https:// URL")],
)  # fmt: skip
def test_the_command_line_refuses_impossible_reply_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
