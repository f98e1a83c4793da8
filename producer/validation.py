"""Pydantic's validation errors, told as field problems a person can act on."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from producer.errors import FieldProblem

NOT_BLANK = r"\S"
NO_SURROUNDING_SPACE = r"(?s)^\S(?:.*\S)?$"
"""Text rules as patterns: pydantic-core checks them far faster than a Python validator."""

_PATTERN_PROBLEMS = {
    NOT_BLANK: "must not be blank",
    NO_SURROUNDING_SPACE: "must not start or end with whitespace",
}

_TYPE_NAMES = {
    "string_type": "a string",
    "bool_type": "true or false",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
    "list_type": "a list",
}


def problems_from(error: PydanticValidationError) -> list[FieldProblem]:
    """One problem per error, each at its dotted path in the wire shape."""
    return [_problem(detail) for detail in error.errors(include_url=False)]


def _problem(detail: ErrorDetails) -> FieldProblem:
    path = ".".join(str(part) for part in detail["loc"])
    located = (detail.get("ctx") or {}).get("error")
    if located is not None and hasattr(located, "path"):
        return FieldProblem(".".join(filter(None, [path, located.path])), located.problem)
    return FieldProblem(path, _describe(detail))


def _describe(detail: ErrorDetails) -> str:  # noqa: PLR0911 - one line per kind of error
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this message"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters, got {_length(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        return _PATTERN_PROBLEMS.get(ctx.get("pattern", ""), f"must match {ctx.get('pattern')}")
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} items, got {ctx.get('actual_length', 0)}"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} items, got {ctx.get('actual_length', '?')}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}, got {_shown(value)}"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, got {type(value).__name__} {_shown(value)}"
    return str(detail["msg"]).removeprefix("Value error, ")


def _length(value: Any) -> str:
    return str(len(value)) if isinstance(value, str) else "?"


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
