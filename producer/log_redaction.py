"""Keeping secrets out of every log line, whoever logs them and however they are spelled."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"
SECRET_VARIABLES = ("ZIXFLOW_API_KEY", "ZQ_API_TOKENS", "ZQ_ZIXFLOW_WEBHOOK_TOKEN",
                    "ZQ_WEBHOOK_SECRET")  # fmt: skip
"""The settings that hold secrets (a test holds this list to the settings classes). Read from
the environment, so that every process redacts them all, whichever of them it uses itself."""
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
_TRACEBACKS = logging.Formatter()


def secrets_from_environment(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The secret settings' values: each whole, and each part of a comma-separated list."""
    values = [environ.get(variable, "") for variable in SECRET_VARIABLES]
    return [part for value in values for part in {value, *value.split(",")} if part.strip()]


class Redactor(logging.Filter):
    """Replaces every secret in a record (message, arguments, exception and stack text, extra
    fields), raw or as JSON escapes it, before any handler formats it."""

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        super().__init__()
        found = secrets_from_environment() if secrets is None else secrets
        spellings = {spelling for secret in found if secret for spelling in _spellings(secret)}
        longest_first = sorted(spellings, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, longest_first))) if spellings else None

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; it is always passed on."""
        if self._pattern is not None:
            self._scrub(record)
        return True

    def redact(self, text: str) -> str:
        """`text` with every secret replaced."""
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def _scrub(self, record: logging.LogRecord) -> None:
        record.msg = self._value(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: self._value(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(self._value(value) for value in record.args)
        message = record.getMessage()
        if self.redact(message) != message:  # in an argument's repr, or split by formatting
            record.msg, record.args = self.redact(message), ()
        if record.exc_info:
            # JSON formatters render exc_info afresh: keep the redacted text only.
            record.exc_text = record.exc_text or _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        for name in ("exc_text", "stack_info"):
            if text := getattr(record, name):
                setattr(record, name, self.redact(text))
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, self.redact(value))

    def _value(self, value: Any) -> Any:
        return self.redact(value) if isinstance(value, str) else value


def _spellings(secret: str) -> set[str]:
    """The secret as it may appear: raw, JSON-escaped (with "/" escaped too, as PHP does),
    and without the `whsec_` prefix of a signing secret."""
    spelled = {secret, secret.removeprefix("whsec_")}
    spelled |= {
        json.dumps(s, ensure_ascii=only_ascii)[1:-1]
        for s in spelled
        for only_ascii in (True, False)
    }
    return {s for s in spelled | {s.replace("/", "\\/") for s in spelled} if s}
