"""The `zixflow-queue` command: send, bulk, status, dead letters, the sandbox and the demo.

Data goes to stdout, messages to stderr. Exit codes: 0 done, 1 failed (Redis down, a job
failed or was not found), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from producer.bulk import button_spec, read_messages
from producer.deadletters import DeadLetters
from producer.enqueue import default_producer
from producer.errors import ProducerError, ValidationError
from producer.message import parse_message, reply_buttons
from producer.settings import environment_variables

USAGE, FAILED = 2, 1


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def cmd_send(args: argparse.Namespace) -> int:
    """Validate one message and enqueue it (or only show it with --dry-run)."""
    if args.file:
        message = parse_message(json.loads(Path(args.file).read_text()))
    elif not (args.to and args.phone_id and args.body and args.button):
        print("error: give --file, or --to, --phone-id, --body and --button", file=sys.stderr)
        return USAGE
    else:
        message = reply_buttons(
            to=args.to, phone_id=args.phone_id, body=args.body,
            buttons=[button_spec(text) for text in args.button], header=args.header,
            header_image=args.header_image, header_video=args.header_video,
            header_document=args.header_document, footer=args.footer,
            submission_status=args.submission_status,
        )  # fmt: skip
    if args.dry_run:
        print(json.dumps(message.to_wire(), indent=2, ensure_ascii=False))
        return 0
    job_id = default_producer().enqueue(message, idempotency_key=args.idempotency_key)
    _emit(args, {"job_id": job_id}, job_id)
    return 0


def cmd_bulk(args: argparse.Namespace) -> int:
    """Validate every line of a JSON Lines or CSV file, then enqueue them together."""
    good, bad = read_messages(Path(args.file))
    for line, error in bad:
        print(f"line {line}: {error}", file=sys.stderr)
    if bad and not args.skip_invalid:
        print(f"{len(bad)} invalid line(s): nothing enqueued (--skip-invalid to send the rest)",
              file=sys.stderr)  # fmt: skip
        return USAGE
    if args.dry_run:
        for line, message in good:
            print(json.dumps({"line": line, "message": message.to_wire()}, ensure_ascii=False))
        return 0
    job_ids = default_producer().enqueue_many([message for _, message in good])
    rows = [
        {"line": line, "job_id": job_id} for (line, _), job_id in zip(good, job_ids, strict=True)
    ]
    for row in rows:
        print(json.dumps(row) if args.json else f"{row['line']}\t{row['job_id']}")
    print(f"enqueued {len(rows)} job(s)" + (f", skipped {len(bad)}" if bad else ""),
          file=sys.stderr)  # fmt: skip
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show a job's status; with --wait, poll until it is sent or failed."""
    producer = default_producer()
    deadline = time.monotonic() + args.timeout
    status = producer.get_status(args.job_id)
    while args.wait and status is not None and not status.final and time.monotonic() < deadline:
        time.sleep(0.2)
        status = producer.get_status(args.job_id)
    if status is None:
        print(f"error: no job {args.job_id} (never enqueued, or its record expired)",
              file=sys.stderr)  # fmt: skip
        return FAILED
    line = f"{status.job_id}\t{status.state}\tattempts={status.attempts}"
    _emit(args, status.as_dict(), line + (f"\t{status.error}" if status.error else ""))
    return FAILED if status.state == "failed" else 0


def cmd_dead(args: argparse.Namespace) -> int:
    """List, show, replay or purge dead letters."""
    producer = default_producer()
    letters = DeadLetters(producer.store, producer.settings.queue)
    if args.action == "list":
        entries = letters.entries(contains=args.match)
        rows = [f"{e.id}\t{time.strftime('%F %T', time.gmtime(e.at))}\t{e.reason}" for e in entries]
        _emit(args, [e.as_dict() for e in entries], "\n".join(rows) or "no dead letters")
        return 0
    if args.action == "show":
        found = [letters.get(letter_id) for letter_id in args.ids]
        missing = [i for i, letter in zip(args.ids, found, strict=True) if letter is None]
        for letter in filter(None, found):
            print(json.dumps(letter.as_dict(), indent=2, default=str))
        if missing:
            print(f"error: no dead letter {', '.join(missing)}", file=sys.stderr)
        return FAILED if missing else 0
    chosen = [e.id for e in letters.entries(contains=args.match)] if args.all else args.ids
    if not args.ids and not args.all:
        print("error: name dead letters by id, or use --all (with --match to filter)",
              file=sys.stderr)  # fmt: skip
        return USAGE
    if args.action == "replay":
        replayed = letters.replay(chosen)
        _emit(args, replayed, "\n".join(replayed))
        print(f"replayed {len(replayed)} job(s)", file=sys.stderr)
    else:
        print(f"purged {letters.purge(chosen)} dead letter(s)", file=sys.stderr)
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Serve the Zixflow sandbox until interrupted."""
    from worker.sandbox.__main__ import main as serve_sandbox  # noqa: PLC0415 - worker code, on demand

    serve_sandbox(args.sandbox_args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole pipeline on this machine and print a summary."""
    from producer.demo import run_demo  # noqa: PLC0415 - starts processes: loaded on demand

    code: int = run_demo(count=args.count, workers=args.workers)
    return code


def environment_help() -> str:
    """The configuration table, generated from the settings so that it never drifts."""
    from worker.settings import WorkerSettings  # noqa: PLC0415 - the fields, not worker code

    rows = environment_variables(WorkerSettings)
    width = max(len(variable) for variable, _, _ in rows)
    lines = [f"  {variable:<{width}}  {default}" for variable, default, _ in rows]
    return "configuration (environment variables, with defaults):\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="zixflow-queue",
        description="Queue WhatsApp reply-button messages for Zixflow, and watch them go.",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")

    send = commands.add_parser("send", parents=[common], help="enqueue one message")
    send.add_argument("--file", help="a JSON file in Zixflow's wire shape")
    send.add_argument("--to")
    send.add_argument("--phone-id")
    send.add_argument("--body")
    send.add_argument("--button", action="append", default=[], help="TITLE or ID=TITLE (1 to 3)")
    send.add_argument("--header")
    send.add_argument("--header-image")
    send.add_argument("--header-video")
    send.add_argument("--header-document")
    send.add_argument("--footer")
    send.add_argument("--submission-status", action="store_true")
    send.add_argument("--idempotency-key")
    send.add_argument("--dry-run", action="store_true", help="validate and print, enqueue nothing")
    send.set_defaults(handler=cmd_send)

    bulk = commands.add_parser("bulk", parents=[common], help="enqueue a JSON Lines or CSV file")
    bulk.add_argument("file")
    bulk.add_argument("--skip-invalid", action="store_true", help="enqueue the valid lines anyway")
    bulk.add_argument("--dry-run", action="store_true")
    bulk.set_defaults(handler=cmd_bulk)

    status = commands.add_parser("status", parents=[common], help="show a job's status")
    status.add_argument("job_id")
    status.add_argument("--wait", action="store_true", help="until sent or failed")
    status.add_argument("--timeout", type=float, default=60.0)
    status.set_defaults(handler=cmd_status)

    dead = commands.add_parser("dead", parents=[common], help="dead letters")
    dead.add_argument("action", choices=["list", "show", "replay", "purge"])
    dead.add_argument("ids", nargs="*")
    dead.add_argument("--all", action="store_true", help="every entry (matching --match)")
    dead.add_argument("--match", help="only entries whose reason or id contains this")
    dead.set_defaults(handler=cmd_dead)

    sandbox = commands.add_parser("sandbox", help="serve the Zixflow sandbox",
                                  add_help=False)  # fmt: skip
    sandbox.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    sandbox.set_defaults(handler=cmd_sandbox)

    demo = commands.add_parser("demo", help="run the whole pipeline locally, end to end")
    demo.add_argument("--count", type=int, default=300)
    demo.add_argument("--workers", type=int, default=2)
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors become a message on stderr and an exit code."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ValidationError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE
    except json.JSONDecodeError as error:
        print(f"error: not valid JSON: {error}", file=sys.stderr)
        return USAGE
    except (ProducerError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
