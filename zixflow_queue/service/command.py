"""`zixflow-queue serve`: its flags, and its handler (which loads FastAPI only when it runs)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from producer.settings import ProducerSettings, environment_variables
from zixflow_queue.service.settings import ServiceSettings

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


def serve_command(args: argparse.Namespace) -> int:
    """Serve the HTTP API until interrupted (SIGINT or SIGTERM)."""
    from zixflow_queue.service.server import serve  # noqa: PLC0415 - FastAPI, uvicorn: on demand

    serve(args.host, args.port, workers=args.workers, access_log=not args.no_access_log)
    return 0


def register(commands: Any) -> None:
    """Add `serve` to the command line's subcommands (an argparse subparsers action)."""
    serve = commands.add_parser(
        "serve", help="serve the HTTP API: POST /v1/messages and more",
        description="Serve the HTTP API: queue, follow and cancel messages over HTTP.\n"
        "Needs ZQ_API_TOKENS; reads REDIS_URL, ZQ_QUEUE and the rest as producers do.",
        epilog=_own_settings(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on ({DEFAULT_HOST})"
    )
    serve.add_argument(
        "--port", type=_whole(1, 65535), default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})"
    )
    serve.add_argument(
        "--workers", type=_whole(1, 64), default=1, help="processes sharing the port (1)"
    )
    serve.add_argument("--no-access-log", action="store_true", help="log no line per request")
    serve.set_defaults(handler=serve_command)


def _own_settings() -> str:
    """The settings the service adds to the producer's, as `--help` lists them."""
    shared = {row[0] for row in environment_variables(ProducerSettings)}
    rows = [row for row in environment_variables(ServiceSettings) if row[0] not in shared]
    width = max(len(variable) for variable, _, _ in rows)
    lines = [f"  {variable:<{width}}  {meaning} (default {default})"
             for variable, default, meaning in rows]  # fmt: skip
    return "configuration of its own, from the environment:\n" + "\n".join(lines)


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        value = int(text) if text.isdigit() else -1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, "
                                             f"got {text!r}")  # fmt: skip
        return value

    return parse
