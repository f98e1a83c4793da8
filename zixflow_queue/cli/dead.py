"""`zixflow-queue dead`: list, show, replay and purge dead letters."""

from __future__ import annotations

import argparse
import time
from typing import Any

from producer.deadletters import DeadLetter, DeadLetters
from producer.enqueue import default_producer
from zixflow_queue.cli.actions import action_group, by_id_or_all
from zixflow_queue.cli.output import DONE, FAILED, UsageError, emit, emit_document, note


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `dead` and its actions to the command line."""
    actions = action_group(
        commands, "dead",
        summary="dead letters: jobs that failed for good, messages no worker could read",
        description="Dead letters, newest first. A failed job's entry has the job's id.",
    )  # fmt: skip
    listing = actions.add_parser("list", parents=[common], help="one line per entry")
    listing.add_argument(
        "--match", metavar="TEXT", help="only entries whose reason, id or Zixflow's answer has it"
    )
    listing.set_defaults(handler=list_command)

    show = actions.add_parser("show", parents=[common], help="entries in full, as JSON")
    show.add_argument("ids", nargs="+", metavar="ID")
    show.set_defaults(handler=show_command)

    for action in by_id_or_all(actions, common, [
        ("replay", replay_command, "queue failed jobs again, under their own ids"),
        ("purge", purge_command, "delete entries"),
    ], every="every entry (see --match)"):  # fmt: skip
        action.add_argument("--match", metavar="TEXT", help="with --all: entries that have it")


def _letters() -> DeadLetters:
    producer = default_producer()
    return DeadLetters(producer.store, producer.settings)


def list_command(args: argparse.Namespace) -> int:
    """One line per entry: id, time (UTC), attempts, reason."""
    entries = _letters().entries(contains=args.match)
    for letter in entries:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(letter.at))
        emit(args, letter.as_dict(), f"{letter.id}\t{at}\t{letter.attempts}\t{letter.reason}")
    note(f"{len(entries)} dead letter(s)")
    return DONE


def show_command(args: argparse.Namespace) -> int:
    """Each entry in full: indented JSON, or one line each with --json."""
    found = {letter.id: letter for letter in _letters().get_many(args.ids)}
    missing = []
    for letter_id in args.ids:
        if letter_id in found:
            emit_document(args, found[letter_id].as_dict())
        else:
            missing.append(letter_id)
    return _report_missing(missing, "no dead letter")


def replay_command(args: argparse.Namespace) -> int:
    """Queue the chosen failed jobs again; prints the ids of the jobs replayed."""
    letters = _letters()
    chosen = _chosen(args, letters)
    replayed = letters.replay(letter.id for letter in chosen)
    for job_id in replayed:
        emit(args, {"job_id": job_id}, job_id)
    note(f"replayed {len(replayed)} job(s)")
    asked = args.ids or [letter.id for letter in chosen if letter.job_id]
    missing = [letter_id for letter_id in asked if letter_id not in replayed]
    return _report_missing(missing, "not replayed (no such entry, or no job in it)")


def purge_command(args: argparse.Namespace) -> int:
    """Delete the chosen entries."""
    letters = _letters()
    chosen = _chosen(args, letters)
    found = {letter.id for letter in chosen}
    purged = letters.purge(found)
    emit(args, {"purged": purged}, "")
    note(f"purged {purged} dead letter(s)")
    return _report_missing([i for i in args.ids if i not in found], "no dead letter")


def _chosen(args: argparse.Namespace, letters: DeadLetters) -> list[DeadLetter]:
    """The entries named by id, or all (matching --match) with --all."""
    if bool(args.ids) == bool(args.all) or (args.match and not args.all):
        raise UsageError("name dead letters by id, or use --all (with --match to narrow it)")
    if args.all:
        return letters.entries(contains=args.match)
    return letters.get_many(args.ids)


def _report_missing(missing: list[str], what: str) -> int:
    if missing:
        note(f"error: {what}: {', '.join(missing)}")
        return FAILED
    return DONE
