"""How every process of a deployment logs (ZQ_LOG_FORMAT): each program's own text, or one
JSON object per line; secrets redacted either way."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from producer.log_redaction import Redactor
from producer.settings import LogFormat


def json_formatter() -> logging.Formatter:
    """time, level, logger and message, then every field given with `extra=`."""
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's copy with colour codes
    )


def configure_handlers(handlers: Iterable[logging.Handler], log_format: LogFormat) -> None:
    """Give handlers the format, and the redaction filter (once each)."""
    redactor = Redactor()
    for handler in handlers:
        if log_format == "json":
            handler.setFormatter(json_formatter())
        if not any(isinstance(known, Redactor) for known in handler.filters):
            handler.addFilter(redactor)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes (as logging's last resort does)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> object:
        """The current standard error."""
        return sys.stderr


@contextmanager
def log_to_stderr(log_format: LogFormat, level: int = logging.WARNING) -> Iterator[None]:
    """Root logging to stderr while a command runs: the message alone, or JSON."""
    handler = _Stderr()
    handler.setLevel(level)
    configure_handlers([handler], log_format)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
