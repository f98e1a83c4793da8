"""The `zixflow-queue` command: the argument parser, and errors turned into exit codes.

Data goes to stdout, messages to stderr; exit codes are in `zixflow_queue.cli.output`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence

from producer.errors import (
    ConfigurationError,
    IdempotencyConflict,
    OutcomeUnknown,
    StorageError,
    ValidationError,
)
from producer.logs import log_to_stderr
from producer.settings import environment_variables, producer_settings
from worker.settings import WorkerSettings
from zixflow_queue.cli import dead, events, jobs, replies, stats, status
from zixflow_queue.cli.output import FAILED, USAGE, UsageError, note
from zixflow_queue.service import command as service_command


def sandbox_command(args: argparse.Namespace) -> int:
    """Serve the Zixflow sandbox until interrupted (`python -m zixflow_queue.sandbox` flags)."""
    from zixflow_queue.sandbox.__main__ import main as serve  # noqa: PLC0415 - on demand

    return serve(args.sandbox_args)


def demo_command(args: argparse.Namespace) -> int:
    """Run the whole pipeline on this machine and print a summary."""
    from zixflow_queue.demo import Recipient, run_demo  # noqa: PLC0415 - starts processes: on demand

    if bool(args.to) != bool(args.phone_id):
        raise UsageError("--to and --phone-id go together")
    recipient = Recipient(args.to, args.phone_id) if args.to else None
    return run_demo(args.count, args.workers, recipient)


def environment_help() -> str:
    """The configuration table, generated from the settings so that it never drifts."""
    rows = environment_variables(WorkerSettings)
    width = max(len(variable) for variable, _, _ in rows)
    default_width = max(len(default) for _, default, _ in rows)
    lines = [
        f"  {variable:<{width}}  {default:<{default_width}}  {meaning}".rstrip()
        for variable, default, meaning in rows
    ]
    return (
        "configuration, from the environment (variable, default, meaning):\n"
        + "\n".join(lines)
        + "\n\nexit codes: 0 done, 1 failed (Redis down; a job unknown, failed or not "
        "canceled), 2 bad input"
    )


def _positive(text: str) -> int:
    """A whole number of at least 1; argparse names the flag in front of the message."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def retry_advice(error: StorageError, args: argparse.Namespace) -> str:
    """Whether the command may simply be run again after Redis failed it, or how to."""
    if not (isinstance(error, OutcomeUnknown) or error.enqueued):
        return "safe to retry"  # writes say in the error that nothing was stored
    if "idempotency_key" not in args:  # cancel, replay and purge: doing it twice is harmless
        return "it may have taken effect; running the command again is safe"
    count = len(error.enqueued)
    stored = f"{count} job(s) stored before it failed will be sent; " if count else ""
    if args.idempotency_key:
        key = shlex.quote(args.idempotency_key)
        return f"{stored}retry with the same --idempotency-key {key}: nothing is queued twice"
    return (f"{stored}jobs may have been queued, so a retry could send them twice; give "
            "--idempotency-key to make a retry safe")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="zixflow-queue",
        description="Queue WhatsApp reply-button messages for Zixflow, and follow them.",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    jobs.register(commands, common)
    status.register(commands, common)
    stats.register(commands, common)
    dead.register(commands, common)
    replies.register(commands, common)
    events.register(commands, common)
    service_command.register(commands)

    sandbox = commands.add_parser("sandbox", add_help=False, help="serve the Zixflow sandbox "
                                  "(--help for its flags)")  # fmt: skip
    sandbox.set_defaults(handler=sandbox_command)

    demo = commands.add_parser(
        "demo", help="run the whole pipeline here, end to end",
        description="Start Redis (if none answers), the sandbox (unless ZIXFLOW_API_KEY and "
        "ZIXFLOW_BASE_URL are set) and workers; send a batch; print a summary; stop them all.",
    )  # fmt: skip
    demo.add_argument("--count", type=_positive, default=300, help="messages to send")
    demo.add_argument("--workers", type=_positive, default=2, help="worker processes")
    demo.add_argument("--to", help="with the real API: your own number, for every message")
    demo.add_argument("--phone-id", help="with the real API: your sending number's id")
    demo.set_defaults(handler=demo_command)
    return parser


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line; `sandbox` passes its flags on to the sandbox's own parser."""
    parser = build_parser()
    args, others = parser.parse_known_args(argv)
    if args.command == "sandbox":
        args.sandbox_args = others
    elif others:
        parser.error(f"unrecognized arguments: {' '.join(others)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an error becomes a message on stderr and an exit code."""
    args = parse_arguments(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        with log_to_stderr(producer_settings().log_format):  # what the producer logs, as set
            return handler(args)
    except (UsageError, ValidationError, IdempotencyConflict, ConfigurationError) as error:
        note(f"error: {error}")
        return USAGE
    except StorageError as error:
        note(f"error: {error}")
        note(retry_advice(error, args))
        return FAILED
    except KeyboardInterrupt:
        note("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
