"""/healthz and /readyz: whether the process answers, and whether it can reach Redis."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from producer.store import storage_boundary
from zixflow_queue.service.openapi import problem_responses
from zixflow_queue.service.settings import ServiceSettings
from zixflow_queue.service.state import producer_of

OK = b'{"status":"ok"}'


async def healthz() -> Response:
    """The process is alive (it answers); nothing else is checked."""
    return Response(OK, media_type="application/json")


async def readyz(request: Request) -> Response:
    """Redis answers PING (for the job records and the broker); else 503 with Retry-After."""
    store = producer_of(request).store
    with storage_boundary("reach Redis", writes=False):
        await store.records.ping()
        if not store.shared:
            await store.broker.ping()
    return Response(OK, media_type="application/json")


def router(_: ServiceSettings) -> APIRouter:
    """The health checks, open to all: load balancers and orchestrators hold no token."""
    routes = APIRouter(tags=["service"])
    ok: dict[int | str, dict[str, Any]] = {
        200: {"description": 'the service is up: `{"status": "ok"}`'}
    }
    routes.add_api_route("/healthz", healthz, methods=["GET"], summary="Alive", responses=ok)
    routes.add_api_route(
        "/readyz", readyz, methods=["GET"], summary="Ready: Redis answers",
        responses={**ok, **problem_responses({503: "Redis does not answer"})},
    )  # fmt: skip
    return routes
