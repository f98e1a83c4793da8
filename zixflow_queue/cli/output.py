"""The command line's conventions: exit codes, data on stdout, messages on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DONE, FAILED, USAGE = 0, 1, 2
"""Exit codes: done; failed at run time (Redis down, a job failed, unknown or not canceled);
bad input (a flag, file, message or setting)."""


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Data on stdout: JSON with --json, else `text` (nothing when it is empty)."""
    if args.json:
        print(json.dumps(data, default=str, ensure_ascii=False))
    elif text:
        print(text)


def emit_document(args: argparse.Namespace, data: Any) -> None:
    """One JSON document on stdout: on one line with --json, else indented for reading."""
    print(json.dumps(data, default=str, ensure_ascii=False, indent=None if args.json else 2))


def note(text: str) -> None:
    """A message for the person at the terminal, on stderr."""
    print(text, file=sys.stderr, flush=True)


class UsageError(Exception):
    """The command line asks for something that cannot be done as asked (exit code 2)."""
