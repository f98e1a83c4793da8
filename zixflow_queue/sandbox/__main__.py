"""`python -m zixflow_queue.sandbox`: serve the sandbox until interrupted."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from zixflow_queue.sandbox.faults import FaultPlan
from zixflow_queue.sandbox.replies import ReplyPlan, parse_delay
from zixflow_queue.sandbox.server import CannotListen, serve


def parse_rate(text: str) -> tuple[str, float]:
    """KIND=P, e.g. error500=0.2."""
    kind, _, rate = text.partition("=")
    return kind, float(rate)


def parse_port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 65535, got {text!r}")
    return int(text)


def parse_delay_flag(text: str) -> tuple[float, float]:
    """--reply-delay MIN-MAX."""
    try:
        return parse_delay(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """The sandbox's command-line flags."""
    parser = argparse.ArgumentParser(prog="python -m zixflow_queue.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=parse_port, default=8088)
    parser.add_argument("--api-key", default=os.environ.get("ZIXFLOW_API_KEY") or "sandbox-key")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    parser.add_argument(
        "--rate", type=parse_rate, action="append", default=[], metavar="KIND=P",
        help="answer KIND with probability P (repeatable)",
    )  # fmt: skip
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds, on 429s")
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="delay of `slow` answers")
    parser.add_argument("--seed", type=int, default=None)
    replies = parser.add_argument_group(
        "replies", "play the recipients: post Zixflow's incoming.whatsapp.message events, a tap "
        "on a random button, for a share of the messages accepted",
    )  # fmt: skip
    replies.add_argument(
        "--reply-url", metavar="URL",
        help="where to post them, e.g. http://127.0.0.1:8080/v1/zixflow/events",
    )  # fmt: skip
    replies.add_argument(
        "--reply-token", default=os.environ.get("ZQ_ZIXFLOW_WEBHOOK_TOKEN"), metavar="TOKEN",
        help="sent as X-Zixflow-Token (default: ZQ_ZIXFLOW_WEBHOOK_TOKEN)",
    )  # fmt: skip
    replies.add_argument(
        "--reply-rate", type=float, default=0.5, metavar="P",
        help="share of accepted messages that get a reply, 0 to 1 (0.5)",
    )  # fmt: skip
    replies.add_argument(
        "--reply-delay", type=parse_delay_flag, default=(0.5, 3.0), metavar="MIN-MAX",
        help="seconds from the message to its reply (0.5-3)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve with the flags given; the exit code (2 when the address cannot be bound)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = FaultPlan(latency_ms=args.latency_ms, seed=args.seed, rates=dict(args.rate),
                         retry_after=args.retry_after, slow_seconds=args.slow_seconds)  # fmt: skip
        replies = ReplyPlan(url=args.reply_url, token=args.reply_token, rate=args.reply_rate,
                            delay=args.reply_delay, seed=args.seed)  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    # A key taken from the environment may be the real one: never print it.
    from_environment = args.api_key == os.environ.get("ZIXFLOW_API_KEY")
    try:
        serve(args.host, args.port, args.api_key, plan, replies=replies,
              key_source="ZIXFLOW_API_KEY" if from_environment else None)  # fmt: skip
    except CannotListen as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
