"""`zixflow-queue events`: status events that failed for good, listed, replayed and purged."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from producer.enqueue import default_producer
from zixflow_queue.cli.actions import action_group, by_id_or_all
from zixflow_queue.cli.output import DONE, FAILED, UsageError, emit, note
from zixflow_queue.events_admin import FailedEvents


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `events` and its actions to the command line."""
    actions = action_group(
        commands, "events", summary="status events that failed for good: list, replay, purge",
        description="Status events (message.sent, .failed, .canceled, .replied) that a worker "
        "gave up on: after ZQ_EVENT_MAX_ATTEMPTS tries, or refused by the receiver. Kept as "
        "long as the job records (ZQ_RECORD_TTL).",
    )  # fmt: skip
    listing = actions.add_parser("list", parents=[common], help="one line per event, newest first")
    listing.set_defaults(handler=list_command)
    by_id_or_all(actions, common, [
        ("replay", replay_command, "deliver them again: same body and webhook-id, fresh tries"),
        ("purge", purge_command, "delete them"),
    ], every="every failed event")  # fmt: skip


def _failed() -> FailedEvents:
    producer = default_producer()
    return FailedEvents.of(producer.store, producer.settings)


def list_command(args: argparse.Namespace) -> int:
    """One line per event: id, time failed (UTC), type, job id, URL, attempts, error."""
    failed = _failed().entries()
    for event in failed:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.failed_at))
        cells = (event.id, at, event.type, event.job_id, event.url, str(event.attempts),
                 event.error)  # fmt: skip
        emit(args, event.as_dict(), "\t".join(cells))
    note(f"{len(failed)} failed status event(s)")
    return DONE


def replay_command(args: argparse.Namespace) -> int:
    """Put the chosen events back on the ready list; prints each id replayed."""
    return _act(args, FailedEvents.replay, "replayed")


def purge_command(args: argparse.Namespace) -> int:
    """Delete the chosen events; prints each id purged."""
    return _act(args, FailedEvents.purge, "purged")


def _act(
    args: argparse.Namespace,
    action: Callable[[FailedEvents, list[str] | None], list[str]],
    done: str,
) -> int:
    """Replay or purge the events named (or all); exit 1 when a named one was not failed."""
    if bool(args.ids) == bool(args.all):
        raise UsageError("name failed events by id, or use --all")
    handled = action(_failed(), None if args.all else args.ids)
    for event_id in handled:
        emit(args, {"id": event_id, done: True}, event_id)
    note(f"{done} {len(handled)} status event(s)")
    missing = [event_id for event_id in args.ids if event_id not in handled]
    if missing:
        note(f"error: not a failed status event (or expired): {', '.join(missing)}")
        return FAILED
    return DONE
