"""`zixflow-queue replies list`: the events Zixflow's webhook brought, and what became of each."""

from __future__ import annotations

import argparse
import time
from typing import Any

from producer.enqueue import default_producer
from zixflow_queue.cli.actions import action_group
from zixflow_queue.cli.output import DONE, UsageError, emit, note
from zixflow_queue.replies.kept import OUTCOMES, KeptEvents


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `replies` and its action to the command line."""
    actions = action_group(
        commands, "replies", summary="events from Zixflow's webhook: button replies, and the rest",
        description="The events POST /v1/zixflow/events kept, newest first: matched (a reply "
        "on its job), unmatched (a button no job sent offers), other (not a button reply) or "
        "unknown (a shape that could not be read).",
    )  # fmt: skip
    listing = actions.add_parser("list", parents=[common], help="one line per event")
    listing.add_argument("--outcome", choices=OUTCOMES, help="only events of this outcome")
    listing.add_argument("--limit", type=int, default=50, help="most events shown (50)")
    listing.set_defaults(handler=list_command)


def list_command(args: argparse.Namespace) -> int:
    """One line per event: id, time (UTC), outcome, sender, button title, job id."""
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    producer = default_producer()
    events = KeptEvents(producer.store.records, producer.keys).latest(
        outcome=args.outcome, limit=args.limit
    )
    for event in events:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.received_at))
        cells = (event.event_id, at, event.outcome, event.sender, event.title, event.job_id)
        emit(args, event.as_dict(), "\t".join(cell or "-" for cell in cells))
    note(f"{len(events)} event(s)")
    return DONE
