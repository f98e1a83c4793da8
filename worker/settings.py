"""The worker's settings, read once from the environment."""

from __future__ import annotations

import json
from functools import cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from producer.settings import ProducerSettings


class WorkerSettings(ProducerSettings):
    """How workers reach Zixflow, retry, pace and shut down (the README's table, in code)."""

    model_config = SettingsConfigDict(env_prefix="ZQ_", extra="ignore", frozen=True)

    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("ZIXFLOW_API_KEY", "api_key")
    )
    base_url: str = Field(
        "https://api.zixflow.com", validation_alias=AliasChoices("ZIXFLOW_BASE_URL", "base_url")
    )
    media_form: Literal["string", "object"] = "string"

    concurrency: int = Field(64, ge=1, description="delivery tasks run at once per worker")
    send_concurrency: int = Field(128, ge=1, description="HTTP sends in flight per worker")
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0, description="long: submissionStatus waits on WhatsApp")

    max_attempts: int = Field(8, ge=1)
    backoff_base: float = Field(1.0, gt=0)
    backoff_cap: float = Field(300.0, gt=0)
    max_retry_after: float = Field(
        3600.0, gt=0, description="a longer Retry-After from Zixflow is taken as this long"
    )
    ambiguous: Literal["retry", "fail"] = Field(
        "retry", description="what to do when a send timed out after the request went out"
    )

    phone_rate: float = Field(80.0, gt=0, description="messages/second per sending phone id")
    phone_burst: int = Field(1, ge=1)
    phone_rates: dict[str, float] = Field(
        default_factory=dict, description='per phone id overrides, JSON: {"phone id": rate}'
    )
    recipient_interval: float = Field(6.0, ge=0, description="seconds between sends to one `to`")
    recipient_burst: int = Field(1, ge=1)
    max_rate_wait: float = Field(
        0.5, ge=0, description="a rate-limit wait up to this is slept; longer is rescheduled"
    )

    visibility_timeout: int = Field(60, ge=10)
    lease_margin: float = Field(15.0, ge=0)
    scheduler_interval: float = Field(0.25, gt=0)
    shutdown_grace: float = Field(30.0, ge=0)
    stale_after: int = Field(
        600, ge=1, description="seconds a queued job may go undelivered before it is republished"
    )

    @field_validator("phone_rates", mode="before")
    @classmethod
    def _parse_phone_rates(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @property
    def lease_seconds(self) -> float:
        """How long a claim on a job lasts: one whole send plus a margin."""
        return self.connect_timeout + self.read_timeout + self.max_rate_wait + self.lease_margin


@cache
def worker_settings() -> WorkerSettings:
    """The settings of this worker process, read from the environment on first use."""
    return WorkerSettings()
