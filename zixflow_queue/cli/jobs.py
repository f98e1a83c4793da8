"""The commands that enqueue: `send` one message, `bulk` send a file of them."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any, Literal

from producer.enqueue import MAX_BATCH, default_producer
from producer.errors import ValidationError
from producer.jobs import Job
from producer.message import ReplyButtonMessage, reply_buttons
from producer.settings import load_settings
from worker.settings import WorkerSettings
from zixflow_queue.cli.files import (
    CSV_COLUMNS,
    FORMATS,
    Bad,
    Good,
    button_spec,
    display_name,
    read_message,
    read_messages,
)
from zixflow_queue.cli.output import DONE, UsageError, emit, emit_document, note
from zixflow_queue.cli.when import parse_when

MESSAGE_FLAGS = ("to", "phone_id", "body", "button", "header", "header_image", "header_video",
                 "header_document", "footer")  # fmt: skip
REQUIRED_FLAGS = MESSAGE_FLAGS[:4]
"""What a message from flags needs at least: to, phone id, body and a button."""
OPTION_FLAGS = {"send_at": "--at", "idempotency_key": "--idempotency-key"}
"""The flag behind each job option the producer checks."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `send` and `bulk` to the command line."""
    send = commands.add_parser(
        "send", parents=[common], help="validate and enqueue one message",
        description="Validate one message and enqueue it; prints its job id.",
    )  # fmt: skip
    send.add_argument("--file", help="a JSON file in Zixflow's wire shape ('-' for stdin)")
    send.add_argument("--to", help="the recipient's number, country code first")
    send.add_argument("--phone-id", help="your sending number's id in Zixflow")
    send.add_argument("--body", help="the message text")
    send.add_argument("--button", action="append", help="TITLE or ID=TITLE; 1 to 3 times")
    send.add_argument("--header", help="header text")
    send.add_argument("--header-image", metavar="URL")
    send.add_argument("--header-video", metavar="URL")
    send.add_argument("--header-document", metavar="URL")
    send.add_argument("--footer")
    send.add_argument("--submission-status", action="store_true",
                      help="have Zixflow wait for WhatsApp; keep its answer")  # fmt: skip
    _enqueue_options(send)
    send.set_defaults(handler=send_command)

    bulk = commands.add_parser(
        "bulk", parents=[common], help="validate and enqueue a JSON Lines or CSV file",
        description="Validate every line first; enqueue all of them, or (when any is bad) none. "
        f"CSV columns: {', '.join(CSV_COLUMNS)} (the first four required).",
    )  # fmt: skip
    bulk.add_argument("file", help="JSON Lines (one wire-shape message per line) or CSV; '-' for "
                      "stdin")  # fmt: skip
    bulk.add_argument("--format", choices=FORMATS,
                      help="default: csv for a *.csv file, else (stdin too) jsonl")  # fmt: skip
    bulk.add_argument("--skip-invalid", action="store_true", help="enqueue the valid lines anyway")
    _enqueue_options(bulk)
    bulk.set_defaults(handler=bulk_command)


def _enqueue_options(command: argparse.ArgumentParser) -> None:
    """The options `send` and `bulk` share: when, a key for safe retries, and a dry run."""
    command.add_argument(
        "--at", type=parse_when, metavar="WHEN",
        help="schedule: an ISO 8601 time with a timezone (...T09:00:00+05:30, ...Z), or +90s, "
        "+15m, +2h, +1d from now",
    )  # fmt: skip
    command.add_argument(
        "--idempotency-key", help="a retry with the same key and input queues nothing new"
    )
    command.add_argument(
        "--dry-run", action="store_true", help="print the wire JSON workers would send; no enqueue"
    )


def send_command(args: argparse.Namespace) -> int:
    """Validate one message and enqueue it (with --dry-run, only print it)."""
    message = _message_from(args)
    if args.dry_run:
        emit_document(args, message.to_wire(media_form=media_form()))
        return DONE
    job_id = _enqueue([Job(message, send_at=args.at)], args.idempotency_key)[0]
    emit(args, {"job_id": job_id}, job_id)
    _note_due(args.at)
    return DONE


def _message_from(args: argparse.Namespace) -> ReplyButtonMessage:
    """The message the flags (or the file) describe."""
    given = [_option(flag) for flag in MESSAGE_FLAGS if getattr(args, flag)]
    if args.file:
        if given:
            raise UsageError(f"--file takes the whole message; leave out {', '.join(given)}")
        return read_message(args.file)
    missing = [_option(flag) for flag in REQUIRED_FLAGS if not getattr(args, flag)]
    if missing:
        raise UsageError(f"give --file, or the message's flags; missing {', '.join(missing)}")
    return reply_buttons(
        to=args.to, phone_id=args.phone_id, body=args.body,
        buttons=[button_spec(text) for text in args.button], header=args.header,
        header_image=args.header_image, header_video=args.header_video,
        header_document=args.header_document, footer=args.footer,
        submission_status=args.submission_status,
    )  # fmt: skip


def bulk_command(args: argparse.Namespace) -> int:
    """Validate every line of a file, then enqueue the lot in one round trip."""
    file_format = args.format or ("csv" if args.file.lower().endswith(".csv") else "jsonl")
    good, bad = read_messages(args.file, file_format)
    invalid = _check_lines(args, good, bad)
    if args.dry_run:
        form = media_form()
        for line, message in good:
            print(json.dumps({"line": line, "message": message.to_wire(media_form=form)},
                             ensure_ascii=False))  # fmt: skip
        return DONE
    jobs = [Job(message, send_at=args.at) for _, message in good]
    job_ids = _enqueue(jobs, args.idempotency_key)
    for (line, _), job_id in zip(good, job_ids, strict=True):
        emit(args, {"line": line, "job_id": job_id}, f"{line}\t{job_id}")
    note(f"enqueued {len(job_ids)} job(s)" + (f", skipped {invalid} invalid" if invalid else ""))
    _note_due(args.at)
    return DONE


def _enqueue(jobs: list[Job], idempotency_key: str | None) -> list[str]:
    """Enqueue valid messages; a problem with --at or --idempotency-key is told once, by flag."""
    try:
        return default_producer().enqueue_jobs(jobs, idempotency_key=idempotency_key)
    except ValidationError as error:
        if not all(problem.path in OPTION_FLAGS for problem in error.problems):
            raise
        told = dict.fromkeys(f"{OPTION_FLAGS[p.path]}: {p.problem}" for p in error.problems)
        raise UsageError("; ".join(told)) from None


def _check_lines(args: argparse.Namespace, good: Good, bad: Bad) -> int:
    """Tell each problem; refuse the file unless its valid lines may go. Returns the bad count."""
    for _, problem in bad:
        note(problem)
    invalid = len({line for line, _ in bad})
    if invalid and not args.skip_invalid:
        raise UsageError(f"{invalid} invalid line(s), nothing enqueued (--skip-invalid: enqueue "
                         "the others)")  # fmt: skip
    if not good:
        raise UsageError(f"no valid messages in {display_name(args.file)}")
    if len(good) > MAX_BATCH:
        raise UsageError(f"{display_name(args.file)} has {len(good):,} messages; at most "
                         f"{MAX_BATCH:,} go in one call: split it")  # fmt: skip
    return invalid


def media_form() -> Literal["string", "object"]:
    """How workers send header media (ZQ_MEDIA_FORM), so that a dry run shows what they send."""
    return load_settings(WorkerSettings).media_form


def _note_due(at: datetime | None) -> None:
    """Say when scheduled jobs are due (a time already past means now)."""
    if at is not None and at > datetime.now(UTC):
        note(f"scheduled: due {at.isoformat(timespec='seconds')}")


def _option(flag: str) -> str:
    return f"--{flag.replace('_', '-')}"
