"""Commands made of actions (`dead replay`, `events list`): their parsers, built alike."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def action_group(commands: Any, name: str, *, summary: str, description: str) -> Any:
    """Add a command whose first argument is an action; the subparsers its actions go in."""
    command = commands.add_parser(name, help=summary, description=description)
    return command.add_subparsers(dest="action", required=True, metavar="ACTION")


def by_id_or_all(
    actions: Any,
    common: argparse.ArgumentParser,
    handlers: Sequence[tuple[str, Handler, str]],
    every: str,
) -> list[argparse.ArgumentParser]:
    """Add actions (name, handler, help) on entries named by id, or on `--all` (`every`)."""
    parsers = []
    for name, handler, what in handlers:
        action = actions.add_parser(name, parents=[common], help=what)
        action.add_argument("ids", nargs="*", metavar="ID")
        action.add_argument("--all", action="store_true", help=every)
        action.set_defaults(handler=handler)
        parsers.append(action)
    return parsers
