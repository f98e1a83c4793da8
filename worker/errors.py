"""The worker's one exception: how a send goes wrong is an `Outcome`, never an exception."""

from __future__ import annotations


class ConfigurationError(Exception):
    """The worker is configured in a way it cannot send with (no API key, a bad base URL)."""
