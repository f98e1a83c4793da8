"""The service's logging: uvicorn's own configuration plus the app's loggers, with secrets
redacted and, with ZQ_LOG_FORMAT=json, one JSON object per line."""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from producer.log_redaction import Redactor
from producer.logs import json_formatter
from producer.settings import LogFormat

APP_FORMAT = "%(levelname)s:     %(name)s: %(message)s"
"""The app's own lines, in uvicorn's look."""


def log_config(log_format: LogFormat) -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration, for uvicorn's `log_config` too."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": Redactor}}
    config["formatters"]["app"] = {"format": APP_FORMAT}
    config["handlers"]["app"] = {"class": "logging.StreamHandler", "formatter": "app",
                                 "stream": "ext://sys.stderr"}  # fmt: skip
    config["root"] = {"handlers": ["app"], "level": "INFO"}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    if log_format == "json":
        config["formatters"] = {name: {"()": json_formatter} for name in config["formatters"]}
    return config
