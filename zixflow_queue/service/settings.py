"""The HTTP service's settings: the producer's, plus its bearer tokens and request limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from producer.enqueue import CHUNK
from producer.errors import ConfigurationError
from producer.settings import ProducerSettings, environment_variable, load_settings

MIB = 1024 * 1024


class ServiceSettings(ProducerSettings):
    """Who may call the service and how much one request may carry."""

    model_config = SettingsConfigDict(env_prefix="ZQ_", extra="ignore", frozen=True)

    # NoDecode: the variable is a comma-separated list, not the JSON pydantic-settings expects.
    api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (),
        description="bearer tokens the HTTP service accepts, comma-separated (required)",
    )
    max_body_bytes: int = Field(
        5 * MIB, ge=1024, description="largest request body the HTTP service reads (413 beyond)"
    )
    max_batch_items: int = Field(
        CHUNK,
        ge=1,
        le=CHUNK,  # a batch is then stored by one atomic script call: all of it or none
        description=f"most messages in one batch request (413 beyond; at most {CHUNK})",
    )
    zixflow_webhook_token: SecretStr | None = Field(
        None,
        description="the X-Zixflow-Token header Zixflow's webhook must send to "
        "POST /v1/zixflow/events (unset: that endpoint refuses every call)",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """Split the variable on commas; blanks around and between tokens are dropped."""
        if isinstance(value, str):
            return tuple(token.strip() for token in value.split(",") if token.strip())
        return value


def service_settings() -> ServiceSettings:
    """The service's settings from the environment; a ConfigurationError without any token."""
    settings = load_settings(ServiceSettings)
    if not settings.api_tokens:
        variable = environment_variable(ServiceSettings, "api_tokens")
        raise ConfigurationError(
            f"{variable}: set at least one bearer token (comma-separated); "
            "the HTTP service refuses to start without one"
        )
    return settings
