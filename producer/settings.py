"""The producer's settings, read once from the environment."""

from __future__ import annotations

import json
from functools import cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY = 24 * 3600
DEFAULT_BATCH_SIZE = 100
"""Jobs per delivery task, unless ZQ_BATCH_SIZE says otherwise."""


class ProducerSettings(BaseSettings):
    """Where jobs go and how long their records live."""

    model_config = SettingsConfigDict(env_prefix="ZQ_", extra="ignore", frozen=True)

    redis_url: str = Field(
        "redis://localhost:6379/0", validation_alias=AliasChoices("REDIS_URL", "redis_url")
    )
    broker_url: str | None = Field(
        None, validation_alias=AliasChoices("CELERY_BROKER_URL", "broker_url")
    )
    queue: str = Field("zixflow", min_length=1)
    record_ttl: int = Field(7 * DAY, gt=0, description="seconds a job record is kept")
    batch_size: int = Field(
        DEFAULT_BATCH_SIZE, ge=1, le=1000, description="jobs per task from enqueue_many"
    )
    socket_timeout: float = Field(5.0, gt=0)

    @property
    def effective_broker_url(self) -> str:
        """The broker Celery uses: CELERY_BROKER_URL when set, else REDIS_URL."""
        return self.broker_url or self.redis_url


def environment_variables(settings: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every field of a settings class, in order."""
    rows = []
    prefix = settings.model_config.get("env_prefix", "")
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        variable = alias.choices[0] if isinstance(alias, AliasChoices) else prefix + name.upper()
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else json.dumps(default)
        rows.append((str(variable), shown.strip('"'), field.description or ""))
    return rows


@cache
def producer_settings() -> ProducerSettings:
    """The settings of this process, read from the environment on first use."""
    return ProducerSettings()
