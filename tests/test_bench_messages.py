"""The benchmark's messages: each run its own recipients, so that no pacing binds."""

from __future__ import annotations

from bench.__main__ import Messages


def test_each_run_of_the_benchmark_has_recipients_of_its_own() -> None:
    messages = Messages(10)
    runs = [messages.next(3), messages.next(), messages.next(2), messages.next()]
    recipients = [message["to"] for run in runs for message in run]
    assert len(recipients) == len(set(recipients)) == 25
