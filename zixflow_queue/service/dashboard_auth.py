"""Who may use the dashboard: basic auth with an API token as the password, and form tokens.

Browsers send basic-auth credentials again by themselves, with any request to the site, so
another site could make a signed-in operator's browser post the dashboard's forms (CSRF). Each
form therefore carries a token that only a dashboard page shows: an HMAC of the operator's API
token. Another site can neither read the page (the same-origin policy) nor compute the HMAC
without the API token. It needs no state on the server, so every process of
`serve --workers N` accepts the token any of them wrote.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from fastapi import Request

from zixflow_queue.service.auth import Tokens
from zixflow_queue.service.problems import Problem

CHALLENGE = 'Basic realm="zixflow-queue"'
FORM_TOKEN_FIELD = "form_token"
_PURPOSE = b"zixflow-queue dashboard form"


async def operator(request: Request) -> str:
    """The API token given as the basic-auth password (any user name); 401 without one."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    password = _password(credentials.strip()) if scheme.lower() == "basic" else None
    tokens: Tokens = request.app.state.tokens
    if password is None or not tokens.accept(password):
        raise Problem(
            401,
            "sign in with any user name and an API token (ZQ_API_TOKENS) as the password",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    return password


def form_token(password: str) -> str:
    """The token the dashboard's forms carry for the operator signed in with `password`."""
    key = password.encode("latin-1")  # the bytes the browser sent (see `_password`)
    return hmac.new(key, _PURPOSE, hashlib.sha256).hexdigest()


def check_form_token(password: str, given: str) -> None:
    """403 unless `given` is the operator's form token (compared in constant time)."""
    expected = form_token(password).encode()
    if not hmac.compare_digest(expected, given.encode(errors="replace")):
        raise Problem(
            403,
            "the form did not come from this dashboard, or is out of date: reload the page",
            kind="form-token",
            title="Form refused",
        )


def _password(credentials: str) -> str | None:
    """The password in `base64(user:password)`, as latin-1 text: the bytes sent, one by one."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon else None
