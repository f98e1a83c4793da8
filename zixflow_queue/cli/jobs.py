"""The job commands: `send` one message, `bulk` send a file of them, `status` of jobs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from producer.enqueue import default_producer
from producer.message import ReplyButtonMessage, parse_message, reply_buttons
from producer.status import JobState, JobStatus
from zixflow_queue.cli.files import button_spec, read_messages
from zixflow_queue.cli.output import DONE, FAILED, UsageError, emit, note

MESSAGE_FLAGS = ("to", "phone_id", "body", "button", "header", "header_image", "header_video",
                 "header_document", "footer")  # fmt: skip
REQUIRED_FLAGS = MESSAGE_FLAGS[:4]
"""What a message from flags needs at least: to, phone id, body and a button."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `send`, `bulk` and `status` to the command line."""
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
    send.add_argument("--idempotency-key", help="the same key and message give the same job")
    send.add_argument("--dry-run", action="store_true", help="print the wire JSON, enqueue nothing")
    send.set_defaults(handler=send_command)

    bulk = commands.add_parser(
        "bulk", parents=[common], help="validate and enqueue a JSON Lines or CSV file",
        description="Validate every line first; enqueue all of them, or (when any is bad) none. "
        "CSV columns: to, phone_id, body, button1, button2, button3, header, footer.",
    )  # fmt: skip
    bulk.add_argument("file", help="*.csv, or JSON Lines (one wire-shape message per line)")
    bulk.add_argument("--skip-invalid", action="store_true", help="enqueue the valid lines anyway")
    bulk.add_argument("--dry-run", action="store_true", help="print the wire JSON, enqueue nothing")
    bulk.set_defaults(handler=bulk_command)

    status = commands.add_parser(
        "status", parents=[common], help="show jobs' status",
        description="Show each job's state. Exit code 1 when a job is unknown or failed.",
    )  # fmt: skip
    status.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    status.add_argument("--wait", action="store_true", help="until every job is sent or failed")
    status.add_argument("--timeout", type=float, default=60.0, help="seconds --wait waits at most")
    status.set_defaults(handler=status_command)


def send_command(args: argparse.Namespace) -> int:
    """Validate one message and enqueue it (with --dry-run, only print it)."""
    message = _message_from(args)
    if args.dry_run:
        print(json.dumps(message.to_wire(), indent=2, ensure_ascii=False))
        return DONE
    job_id = default_producer().enqueue(message, idempotency_key=args.idempotency_key)
    emit(args, {"job_id": job_id}, job_id)
    return DONE


def _message_from(args: argparse.Namespace) -> ReplyButtonMessage:
    """The message the flags (or the file) describe."""
    given = [_option(flag) for flag in MESSAGE_FLAGS if getattr(args, flag)]
    if args.file:
        if given:
            raise UsageError(f"--file takes the whole message; leave out {', '.join(given)}")
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        return parse_message(json.loads(text))
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
    good, bad = read_messages(Path(args.file))
    for line, error in bad:
        note(f"line {line}: {error}")
    if bad and not args.skip_invalid:
        raise UsageError(f"{len(bad)} invalid line(s), nothing enqueued (--skip-invalid: enqueue "
                         "the others)")  # fmt: skip
    if args.dry_run:
        for line, message in good:
            print(json.dumps({"line": line, "message": message.to_wire()}, ensure_ascii=False))
        return DONE
    job_ids = default_producer().enqueue_many([message for _, message in good])
    for (line, _), job_id in zip(good, job_ids, strict=True):
        emit(args, {"line": line, "job_id": job_id}, f"{line}\t{job_id}")
    note(f"enqueued {len(job_ids)} job(s)" + (f", skipped {len(bad)} invalid" if bad else ""))
    return DONE


def status_command(args: argparse.Namespace) -> int:
    """Show jobs' status; with --wait, poll (all in one round trip) until each is finished."""
    producer = default_producer()
    deadline = time.monotonic() + args.timeout
    statuses = producer.get_statuses(args.job_ids)
    while args.wait and not _settled(statuses) and time.monotonic() < deadline:
        time.sleep(0.2)
        statuses = producer.get_statuses(args.job_ids)
    for job_id, status in zip(args.job_ids, statuses, strict=True):
        if status is None:
            note(f"error: no job {job_id} (never enqueued, or its record expired)")
        else:
            emit(args, status.as_dict(), _status_line(status))
    unfinished = args.wait and not _settled(statuses)
    if unfinished:
        note(f"error: not every job finished in {args.timeout:g} s")
    good = all(status is not None and status.state != JobState.FAILED for status in statuses)
    return DONE if good and not unfinished else FAILED


def _settled(statuses: list[JobStatus | None]) -> bool:
    return all(status is None or status.final for status in statuses)


def _status_line(status: JobStatus) -> str:
    fields = [status.job_id, status.state.value, f"attempts={status.attempts}"]
    return "\t".join(fields + ([status.error] if status.error else []))


def _option(flag: str) -> str:
    return f"--{flag.replace('_', '-')}"
