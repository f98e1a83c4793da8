"""The FastAPI app: `create_app(settings)` assembles routers; its lifespan opens Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import APIRouter, FastAPI

from producer.aio import AsyncProducer, AsyncStore
from producer.collector import settle_long_running_process
from zixflow_queue.service import dashboard, health, messages, metrics, openapi, zixflow_events
from zixflow_queue.service.auth import Tokens
from zixflow_queue.service.enqueuer import Enqueuer
from zixflow_queue.service.problems import HANDLERS
from zixflow_queue.service.settings import ServiceSettings, service_settings

RouterFactory = Callable[[ServiceSettings], APIRouter]
ROUTERS: tuple[RouterFactory, ...] = (
    health.router,
    messages.router,
    openapi.router,
    zixflow_events.router,
    metrics.router,
    dashboard.router,
)
"""Every router of the service; a new concern (/metrics, a webhook) adds its own here."""

DESCRIPTION = (
    "Queue WhatsApp reply-button messages for Zixflow and follow them. Every endpoint but "
    "/healthz, /readyz and Zixflow's webhook (`X-Zixflow-Token`) needs `Authorization: Bearer "
    "<token>`; errors are RFC 9457 problem details (application/problem+json)."
)


def create_app(settings: ServiceSettings, routers: Sequence[RouterFactory] = ROUTERS) -> FastAPI:
    """The service's app for these settings (it connects to Redis when it starts serving)."""
    app = FastAPI(
        title="zixflow-queue",
        version=version("zixflow-queue"),
        description=DESCRIPTION,
        lifespan=lifespan,
        exception_handlers=HANDLERS,
        # The document needs a token (openapi.router serves it); the UIs could not send one.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.tokens = Tokens(settings.api_tokens)
    for make_router in routers:
        app.include_router(make_router(settings))
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the Redis clients for the event loop that serves, and close them after."""
    store = AsyncStore.connect(app.state.settings)
    app.state.producer = AsyncProducer(app.state.settings, store)
    app.state.enqueuer = Enqueuer(app.state.producer)
    try:
        yield
    finally:
        await store.close()


def app_from_environment() -> FastAPI:
    """The app configured from the environment: uvicorn's factory, in each worker process."""
    app = create_app(service_settings())
    settle_long_running_process()
    return app
