"""The producer's settings, read once from the environment, and one-line configuration errors."""

from __future__ import annotations

import json
from functools import cache
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from producer.errors import ConfigurationError
from producer.keys import Keys
from producer.sentinel_url import is_sentinel_url, parse_sentinel_url
from producer.validation import callback_url_problem

DAY = 24 * 3600
DEFAULT_BATCH_SIZE = 100
"""Jobs a delivery task takes at once, unless ZQ_BATCH_SIZE says otherwise."""
REDIS_SCHEMES = ("redis", "rediss", "unix")
LogFormat = Literal["text", "json"]


class ProducerSettings(BaseSettings):
    """Where jobs go and how long their records live."""

    model_config = SettingsConfigDict(env_prefix="ZQ_", extra="ignore", frozen=True)

    redis_url: str = Field(
        "redis://localhost:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "redis_url"),
        description="Redis for the broker and the job records (or its Sentinels: sentinel://)",
    )
    broker_url: str | None = Field(
        None,
        validation_alias=AliasChoices("CELERY_BROKER_URL", "broker_url"),
        description="Celery's broker, when it should differ from REDIS_URL (must be Redis)",
    )
    sentinel_master: str = Field(
        "mymaster",
        min_length=1,
        description="the master's name at the Sentinels of a sentinel:// REDIS_URL",
    )
    queue: str = Field(
        "zixflow", min_length=1, pattern=r"^[\w.-]+$", description="the Celery queue"
    )
    prefix: str | None = Field(
        None,
        min_length=1,
        pattern=r"^[\w.:-]+$",
        description="namespace of every Redis key of this deployment (default: zq:<ZQ_QUEUE>)",
    )
    record_ttl: int = Field(
        7 * DAY, gt=0, description="seconds a job record (and its status) is kept"
    )
    batch_size: int = Field(
        DEFAULT_BATCH_SIZE, ge=1, le=1000, description="jobs a delivery task takes at once"
    )
    socket_timeout: float = Field(5.0, gt=0, description="seconds a Redis call may take")
    callback_url: str | None = Field(
        None, description="receives signed status events of jobs enqueued without a callback_url"
    )
    callback_hosts: Literal["any", "public"] = Field(
        "any", description="callback URLs may name any host, or only public ones (production)"
    )
    durable: Literal["off", "aof", "replica"] = Field(
        "off",
        description="enqueue returns once the jobs are in Redis's memory (off), fsynced to its "
        "append-only file (aof), or on ZQ_DURABLE_REPLICAS replicas (replica)",
    )
    durable_replicas: int = Field(
        1, ge=1, description="replicas that must hold the jobs when ZQ_DURABLE=replica"
    )
    durable_timeout: float = Field(
        1.0, gt=0, description="seconds enqueue waits for that; then it raises OutcomeUnknown"
    )
    log_format: LogFormat = Field(
        "text",
        description="log lines as each program writes them (text), or one JSON object per line "
        "(json), in workers, the HTTP service and the CLI",
    )

    @field_validator("broker_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and is_sentinel_url(value):
            parse_sentinel_url(value)
        elif value is not None and urlsplit(value).scheme not in REDIS_SCHEMES:
            schemes = ", ".join(f"{scheme}://" for scheme in (*REDIS_SCHEMES, "sentinel"))
            raise ValueError(f"must be a Redis URL starting with {schemes}")
        return value

    @model_validator(mode="after")
    def _durable_within_socket_timeout(self) -> ProducerSettings:
        if self.durable != "off" and self.durable_timeout >= self.socket_timeout:
            raise ValueError(
                f"ZQ_DURABLE_TIMEOUT={self.durable_timeout} must be below "
                f"ZQ_SOCKET_TIMEOUT={self.socket_timeout}: the wait for a durable write is one "
                "Redis call"
            )
        return self

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        problem = value and callback_url_problem(value, public_only=False)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def effective_broker_url(self) -> str:
        """The broker Celery uses: CELERY_BROKER_URL when set, else REDIS_URL."""
        return self.broker_url or self.redis_url

    @property
    def keys(self) -> Keys:
        """The Redis keys of this deployment, under ZQ_PREFIX or `zq:<ZQ_QUEUE>`."""
        return Keys(self.prefix or f"zq:{self.queue}")


S = TypeVar("S", bound=BaseSettings)


def environment_variable(settings: type[BaseSettings], name: str) -> str:
    """The environment variable that sets the field `name` of a settings class."""
    alias = settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(settings.model_config.get("env_prefix", "")) + name.upper()


def environment_variables(settings: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every field of a settings class, in order."""
    rows = []
    for name, field in settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else json.dumps(default)
        variable = environment_variable(settings, name)
        rows.append((variable, shown.strip('"'), field.description or ""))
    return rows


def load_settings(settings: type[S]) -> S:
    """Read a settings class from the environment; raise one ConfigurationError line per problem."""
    try:
        return settings()
    except PydanticValidationError as error:
        problems = [_problem(settings, detail) for detail in error.errors(include_url=False)]
    except SettingsError as error:  # a JSON setting that is not JSON
        problems = [str(error)]
    raise ConfigurationError("; ".join(problems))


def _problem(settings: type[BaseSettings], detail: object) -> str:
    location = detail["loc"]  # type: ignore[index]
    name = _field_name(settings, str(location[0])) if location else ""
    message = str(detail["msg"]).removeprefix("Value error, ")  # type: ignore[index]
    if name not in settings.model_fields:
        return message
    variable = environment_variable(settings, name)
    if settings.model_fields[name].annotation in (SecretStr, SecretStr | None):
        return f"{variable}: {message}"  # never the secret itself
    return f"{variable}={detail['input']!r}: {message}"  # type: ignore[index]


def _field_name(settings: type[BaseSettings], key: str) -> str:
    """The field an error's location names: by its name, or by an alias (as REDIS_URL is)."""
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if key == name or (isinstance(alias, AliasChoices) and key in alias.choices):
            return name
    return key


@cache
def producer_settings() -> ProducerSettings:
    """The settings of this process, read from the environment on first use."""
    return load_settings(ProducerSettings)
