"""Log lines of every process: JSON with ZQ_LOG_FORMAT=json, and never a secret in any of them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from producer.log_redaction import REDACTED, SECRET_VARIABLES
from producer.logs import configure_handlers, log_to_stderr
from producer.settings import LogFormat, environment_variable
from worker.settings import WorkerSettings
from zixflow_queue.service.settings import ServiceSettings

SECRETS = {
    "ZIXFLOW_API_KEY": "zx/live+9Kp/Vq-7c1e",
    "ZQ_API_TOKENS": "token-a-5d2e,token-b-0f9c",
    "ZQ_ZIXFLOW_WEBHOOK_TOKEN": "hook-token-88ab",
    "ZQ_WEBHOOK_SECRET": "whsec_c2lnbmluZy1zZWNyZXQtb2YtdGVzdHM=",
}
SPELLINGS = ["zx/live+9Kp/Vq-7c1e", "zx\\/live+9Kp\\/Vq-7c1e", "token-a-5d2e", "token-b-0f9c",
             "hook-token-88ab", "whsec_c2lnbmluZy1zZWNyZXQtb2YtdGVzdHM=",
             "c2lnbmluZy1zZWNyZXQtb2YtdGVzdHM="]  # fmt: skip


class Holder:
    """An object whose repr carries a secret: it reaches a line only through formatting."""

    def __repr__(self) -> str:
        return f"Holder(key={SECRETS['ZIXFLOW_API_KEY']})"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in SECRETS.items():
        monkeypatch.setenv(variable, value)


def logged(log_format: LogFormat) -> Iterator[str]:
    """Log, through a handler set up as every process sets up its own, lines full of secrets."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    configure_handlers([handler], log_format)
    log = logging.getLogger(f"tests.logs.{log_format}")
    log.addHandler(handler)
    log.propagate = False
    try:
        key, tokens = SECRETS["ZIXFLOW_API_KEY"], SECRETS["ZQ_API_TOKENS"]
        log.warning("Zixflow said: unauthorised %s", key, extra={"job_id": "j1", "attempt": 2})
        log.warning('answer {"token": "%s"}', key.replace("/", "\\/"))
        log.warning("in a repr: %r", Holder())
        log.warning("a list: %s", tokens.split(","), extra={"note": SECRETS["ZQ_WEBHOOK_SECRET"]})
        log.warning("no key, no change (%d%% sure)", 100)
        try:
            raise RuntimeError(f"header X-Zixflow-Token: {SECRETS['ZQ_ZIXFLOW_WEBHOOK_TOKEN']}")
        except RuntimeError:
            log.exception("the webhook failed")
    finally:
        log.removeHandler(handler)
    return iter(stream.getvalue().splitlines())


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_in_any_spelling_reaches_a_line(secrets: None, log_format: LogFormat) -> None:
    text = "\n".join(logged(log_format))
    for spelling in SPELLINGS:
        assert spelling not in text
    assert text.count(REDACTED) >= 6
    assert "no key, no change (100% sure)" in text
    assert "RuntimeError: header X-Zixflow-Token: [redacted]" in text.replace("\\n", "\n")


def test_json_lines_carry_the_fields_given(secrets: None) -> None:
    lines = [json.loads(line) for line in logged("json")]
    assert len(lines) == 6
    first, *_, failure = lines
    assert first["message"] == f"Zixflow said: unauthorised {REDACTED}"
    assert (first["level"], first["job_id"], first["attempt"]) == ("WARNING", "j1", 2)
    assert {"time", "logger"} <= set(first)
    assert failure["exc_info"].endswith(f"RuntimeError: header X-Zixflow-Token: {REDACTED}")


def test_every_secret_setting_is_redacted() -> None:
    """A new secret setting must join the list the log filter reads."""
    for settings in (WorkerSettings, ServiceSettings):
        fields = settings.model_fields.items()
        secret = [name for name, field in fields if SecretStr in _types(field.annotation)]
        assert secret, settings
        assert {environment_variable(settings, name) for name in secret} <= set(SECRET_VARIABLES)


def _types(annotation: object) -> tuple[object, ...]:
    """An annotation and, for a union or a tuple, its members."""
    return (annotation, *getattr(annotation, "__args__", ()))


def test_a_command_logs_json_to_the_stderr_of_the_moment(
    secrets: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with log_to_stderr("json"):
        logging.getLogger("producer.enqueue").warning("stored, key %s", SECRETS["ZIXFLOW_API_KEY"])
    logging.getLogger("producer.enqueue").warning("after the command: not here")
    line = json.loads(capsys.readouterr().err)
    assert line["message"] == f"stored, key {REDACTED}"
