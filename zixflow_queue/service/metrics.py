"""GET /metrics: the deployment's numbers in the Prometheus text format, one snapshot a scrape."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import choose_encoder

from producer.store import storage_boundary
from zixflow_queue.service.auth import authenticated
from zixflow_queue.service.openapi import problem_responses
from zixflow_queue.service.settings import ServiceSettings
from zixflow_queue.service.state import producer_of
from zixflow_queue.stats import SnapshotReader
from zixflow_queue.stats.prometheus import SnapshotCollector


def router(settings: ServiceSettings) -> APIRouter:
    """GET /metrics, for scrapers with a token (Prometheus's `authorization` setting)."""
    reader = SnapshotReader(settings)

    async def metrics(request: Request) -> Response:
        """Every metric of the deployment, counted across all its workers."""
        store = producer_of(request).store
        with storage_boundary("read the metrics", writes=False):
            snapshot = await reader.read_async(store.records, store.broker)
        # The format the scraper asks for: OpenMetrics for Prometheus, else the text format.
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(SnapshotCollector(snapshot)), media_type=content_type)

    routes = APIRouter(tags=["service"], dependencies=[Depends(authenticated)])
    routes.add_api_route(
        "/metrics", metrics, methods=["GET"], summary="Prometheus metrics",
        response_model=None,
        responses={
            200: {"description": "the metrics", "content": {"text/plain": {}}},
            **problem_responses({401: "no valid bearer token", 503: "Redis does not answer"}),
        },
    )  # fmt: skip
    return routes
