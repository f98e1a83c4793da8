"""Keeping the API key out of what a worker stores and logs, however Zixflow echoes it.

An answer may carry the key escaped (`\\/` for `/`, `\\u0073` for `s`): it is redacted after
the JSON is decoded, in every string and key, before anything reads the answer.
"""

from __future__ import annotations

from typing import Any

REDACTED = "[redacted]"


def redact(value: Any, secret: str) -> Any:
    """`value` (decoded JSON) with every occurrence of `secret` in its strings replaced."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, REDACTED)
    if isinstance(value, dict):
        return {redact(key, secret): redact(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, secret) for item in value]
    return value
