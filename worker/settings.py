"""The worker's settings, read once from the environment and checked before any task runs."""

from __future__ import annotations

import base64
import json
import math
from functools import cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from producer.settings import ProducerSettings, load_settings


class WorkerSettings(ProducerSettings):
    """How workers reach Zixflow, retry, pace and shut down (the README's table, in code)."""

    model_config = SettingsConfigDict(env_prefix="ZQ_", extra="ignore", frozen=True)

    api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ZIXFLOW_API_KEY", "api_key"),
        description="the Zixflow API key, read by workers only",
    )
    base_url: str = Field(
        "https://api.zixflow.com",
        validation_alias=AliasChoices("ZIXFLOW_BASE_URL", "base_url"),
        description="scheme and host of the Zixflow API",
    )
    media_form: Literal["string", "object"] = Field(
        "string", description="header media as the page's URL string, or object {link: url}"
    )

    concurrency: int = Field(64, ge=1, description="delivery tasks a worker runs at once")
    send_concurrency: int = Field(
        128, ge=1, description="HTTP sends in flight per worker to start with"
    )
    max_in_flight: int = Field(
        2048, ge=1, description="most HTTP sends in flight per worker, as latency allows"
    )
    connect_timeout: float = Field(5.0, gt=0, description="seconds to connect to Zixflow")
    read_timeout: float = Field(
        60.0, gt=0, description="seconds for Zixflow's whole answer (submissionStatus waits)"
    )

    max_attempts: int = Field(8, ge=1, description="HTTP attempts before a job fails")
    backoff_base: float = Field(
        1.0, gt=0, description="first retry delay bound, doubled each attempt (full jitter)"
    )
    backoff_cap: float = Field(300.0, gt=0, description="largest backoff between attempts")
    max_retry_after: float = Field(
        3600.0, gt=0, description="a longer Retry-After from Zixflow is taken as this long"
    )
    ambiguous: Literal["retry", "fail"] = Field(
        "retry", description="a timeout after the request went out: retry (may duplicate) or fail"
    )

    phone_rate: float = Field(
        80.0, gt=0, description="messages/second per sending phone id, across all workers"
    )
    phone_burst: int = Field(1, ge=1, description="sends a phone id may run ahead of that rate")
    phone_rates: dict[str, float] = Field(
        default_factory=dict, description='per phone id rates, JSON: {"phone id": rate}'
    )
    recipient_interval: float = Field(
        6.0, ge=0, description="seconds between messages to one recipient (0: no pacing)"
    )
    recipient_burst: int = Field(
        1, ge=1, description="messages to one recipient that may run ahead of that pace"
    )
    max_rate_wait: float = Field(
        0.5, ge=0, description="a rate-limit wait up to this is slept; longer is rescheduled"
    )

    webhook_secret: SecretStr | None = Field(
        None, description="signs status events (Standard Webhooks): whsec_ and base64"
    )
    event_concurrency: int = Field(32, ge=1, description="status events a worker posts at once")
    event_timeout: float = Field(10.0, gt=0, description="seconds a callback URL gets to answer")
    event_max_attempts: int = Field(
        12, ge=1, description="tries of a status event before it fails for good"
    )

    heartbeat_timeout: float = Field(
        30.0, ge=5, description="seconds without a heartbeat before a worker's jobs are taken over"
    )
    scheduler_interval: float = Field(
        0.25, gt=0, description="how often each worker moves due jobs to the ready list"
    )
    shutdown_grace: float = Field(
        30.0, ge=0, description="seconds sends in flight get to finish on SIGTERM"
    )
    stale_after: int = Field(
        600, ge=1, description="seconds an unfinished job may go unmoved before it is made ready"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        key = value.get_secret_value() if value is not None else ""
        if key and (key != key.strip() or not key.isprintable()):
            raise ValueError(
                "has whitespace around it or a control character in it (a trailing newline?)"
            )
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        return value or None

    @field_validator("webhook_secret")
    @classmethod
    def _signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        try:
            decoded = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            decoded = b""
        if value is not None and len(decoded) < 16:
            raise ValueError("must be whsec_ followed by base64 of at least 16 bytes")
        return value

    @field_validator("phone_rates", mode="before")
    @classmethod
    def _parse_phone_rates(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("phone_rates")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {phone: rate for phone, rate in value.items() if not 0 < rate < math.inf}
        if bad:
            raise ValueError(f"every rate must be a number above 0, got {bad}")
        return value

    @property
    def send_deadline(self) -> float:
        """The longest one send may take, answer included."""
        return self.connect_timeout + self.read_timeout


@cache
def worker_settings() -> WorkerSettings:
    """The settings of this worker process, read from the environment on first use."""
    return load_settings(WorkerSettings)
