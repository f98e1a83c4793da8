"""What the app holds on `app.state` while it serves (see `app.lifespan`)."""

from __future__ import annotations

from fastapi import Request

from producer.aio import AsyncProducer
from zixflow_queue.service.enqueuer import Enqueuer


def producer_of(request: Request) -> AsyncProducer:
    """The app's producer, opened by its lifespan."""
    producer: AsyncProducer = request.app.state.producer
    return producer


def enqueuer_of(request: Request) -> Enqueuer:
    """The app's enqueuer, which stores the jobs of requests arriving together in one call."""
    enqueuer: Enqueuer = request.app.state.enqueuer
    return enqueuer
