"""Bearer tokens: who may call the service. A router that needs them depends on `authenticated`."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi.security import HTTPBearer
from pydantic import SecretStr
from starlette.requests import HTTPConnection

from zixflow_queue.service.problems import Problem


class Tokens:
    """The accepted tokens, compared in constant time so that timing tells nothing about them."""

    def __init__(self, tokens: Iterable[SecretStr]) -> None:
        self._tokens = [token.get_secret_value().encode() for token in tokens]

    def accept(self, given: str) -> bool:
        """Whether `given` is one of the tokens; every token is compared, whichever matches."""
        # Starlette decodes header values as latin-1: this gives back the bytes that were sent.
        candidate = given.encode("latin-1")
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(token, candidate)
        return matched


class BearerToken(HTTPBearer):
    """A dependency that refuses a request (401) without one of the app's tokens.

    One dependency rather than FastAPI's HTTPBearer plus a check: each costs time per request.
    As an HTTPBearer, it puts the bearer scheme into the OpenAPI document.
    """

    async def __call__(self, request: HTTPConnection) -> None:
        """Pass a request whose `Authorization: Bearer <token>` holds an accepted token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        tokens: Tokens = request.app.state.tokens
        if scheme.lower() != "bearer" or not tokens.accept(token.strip()):
            raise unauthorized()


def unauthorized() -> Problem:
    """401 that does not say whether the header, its scheme or the token was wrong."""
    return Problem(
        401,
        "send a valid API token as `Authorization: Bearer <token>`",
        headers={"WWW-Authenticate": "Bearer"},
    )


authenticated = BearerToken(
    scheme_name="bearer",
    description="One of the tokens in ZQ_API_TOKENS: `Authorization: Bearer <token>`.",
)
