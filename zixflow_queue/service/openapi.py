"""The OpenAPI document: FastAPI's, plus the bodies routes read themselves and the problem shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from zixflow_queue.service.auth import authenticated
from zixflow_queue.service.models import ProblemDetails
from zixflow_queue.service.problems import PROBLEM_JSON
from zixflow_queue.service.settings import ServiceSettings

REF = "#/components/schemas/{model}"
SCHEMAS = "x-zixflow-queue-schemas"
"""Carries a route's body schemas (see `request_body`) into the components, then is dropped."""


def request_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads and validates its JSON body itself.

    Such a route declares no body parameter, so that FastAPI does not parse and validate it a
    second time; this puts the model's schema (validation side) into the document instead.
    """
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    schemas = {**schema.pop("$defs", {}), model.__name__: schema}
    content = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
    return {
        "requestBody": {"required": True, "description": description, "content": content},
        SCHEMAS: schemas,
    }


def problem_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses` entries for error statuses, each an `application/problem+json` body."""
    schema = {"$ref": REF.format(model=ProblemDetails.__name__)}
    return {
        status: {"description": text, "content": {PROBLEM_JSON: {"schema": schema}}}
        for status, text in descriptions.items()
    }


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built on first use."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        problem = ProblemDetails.model_json_schema(ref_template=REF, mode="serialization")
        schemas.update({**problem.pop("$defs", {}), ProblemDetails.__name__: problem})
        for operation in (op for item in spec["paths"].values() for op in item.values()):
            schemas.update(operation.pop(SCHEMAS, {}))
            _drop_parameter_errors(operation)
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = spec
    return app.openapi_schema


def _drop_parameter_errors(operation: dict[str, Any]) -> None:
    """Remove the 422 FastAPI documents for routes with parameters: this service's parameters
    are plain strings FastAPI never refuses; its own 422s are problems, documented per route."""
    answer = operation.get("responses", {}).get("422", {})
    if "application/json" in answer.get("content", {}):
        del operation["responses"]["422"]


async def openapi_json(request: Request) -> JSONResponse:
    """This service's OpenAPI document."""
    return JSONResponse(document(request.app))


def router(_: ServiceSettings) -> APIRouter:
    """GET /openapi.json, for callers with a token."""
    routes = APIRouter(tags=["service"], dependencies=[Depends(authenticated)])
    routes.add_api_route(
        "/openapi.json",
        openapi_json,
        methods=["GET"],
        summary="This OpenAPI document",
        response_model=None,
        responses={
            200: {"description": "the document", "content": {"application/json": {}}},
            **problem_responses({401: "no valid bearer token"}),
        },
    )
    return routes
