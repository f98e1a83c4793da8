"""Rules for single wire values, and pydantic's errors told as problems a person can act on."""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from producer.errors import FieldProblem

NOT_BLANK = r"\S"
NO_SURROUNDING_SPACE = r"(?s)^\S(?:.*\S)?$"
"""Text rules as patterns: pydantic-core checks them far faster than a Python validator."""

PHONE_DIGITS_MIN, PHONE_DIGITS_MAX = 8, 15
_PHONE_NOISE = re.compile(r"[\s\-.()\[\]]")
_WHITESPACE = re.compile(r"\s")
_PHONE_LENGTH = range(PHONE_DIGITS_MIN, PHONE_DIGITS_MAX + 1).__contains__


def bounded_text(max_length: int) -> Any:
    """A string of 1 to `max_length` characters, not all whitespace."""
    return StringConstraints(strict=True, min_length=1, max_length=max_length, pattern=NOT_BLANK)


def bounded_identifier(max_length: int) -> Any:
    """A string of 1 to `max_length` characters with no whitespace around it."""
    return StringConstraints(
        strict=True, min_length=1, max_length=max_length, pattern=NO_SURROUNDING_SPACE
    )


def _refuse(problem: str, value: object, **facts: object) -> PydanticCustomError:
    """A custom error whose text is the problem, with the offending value cut short."""
    return PydanticCustomError("refused", problem, {"value": shown(value), **facts})


def _phone_number(value: object) -> object:
    """Strip spaces, dashes, dots, brackets and one leading + or 00, then check the digits."""
    if not isinstance(value, str):
        return value  # the strict string check names the wrong type
    if value.isascii() and value.isdigit() and value[0] != "0" and _PHONE_LENGTH(len(value)):
        return value  # already in shape: the common case, kept fast
    digits = _PHONE_NOISE.sub("", value)
    digits = digits[1:] if digits.startswith("+") else digits.removeprefix("00")
    if not (digits.isascii() and digits.isdigit()):
        raise _refuse("must be a phone number in international format, got {value}", value)
    if not _PHONE_LENGTH(len(digits)):
        raise _refuse(
            "must have {low} to {high} digits (country code first), got {count} in {value}",
            value,
            low=PHONE_DIGITS_MIN,
            high=PHONE_DIGITS_MAX,
            count=len(digits),
        )
    if digits[0] == "0":
        raise _refuse("must start with the country code, not 0, got {value}", value)
    return digits


def _http_url(value: str) -> str:
    """Only http(s) URLs with a host name and no whitespace."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or _WHITESPACE.search(value):
        raise _refuse("must be an http(s) URL, got {value}", value)
    if not parts.hostname:
        raise _refuse("must be an http(s) URL with a host name, got {value}", value)
    return value


def _media_link(value: object) -> object:
    """Take the Cloud API's {"link": url} media object as its URL, the page's own form."""
    if isinstance(value, Mapping):
        if set(value) != {"link"}:
            raise _refuse('must be a URL string or {"link": url}, got {value}', value)
        return value["link"]
    return value


PhoneNumber = Annotated[str, StringConstraints(strict=True), BeforeValidator(_phone_number)]
"""A phone number as the wire wants it (digits only), forgiving the usual punctuation."""
HttpUrl = Annotated[str, StringConstraints(strict=True), AfterValidator(_http_url)]
MediaUrl = Annotated[HttpUrl, BeforeValidator(_media_link)]
"""A media URL, given as a string or as {"link": url}, kept as the string."""

_PATTERN_PROBLEMS = {
    NOT_BLANK: "must not be blank",
    NO_SURROUNDING_SPACE: "must not start or end with whitespace",
}

_PROBLEMS = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters, got {length}",
    "too_short": "must have at least {min_length} item(s), got {actual_length}",
    "literal_error": "must be {expected}, got {value}",
    "string_type": "must be a string, got {got}",
    "bool_type": "must be true or false, got {got}",
    "model_type": "must be an object, got {got}",
    "list_type": "must be a list, got {got}",
}
"""Pydantic error types in words; the placeholders come from the error's ctx and input."""

_JSON_KINDS = {str: "string", int: "number", float: "number", dict: "object", list: "list",
               tuple: "list"}  # fmt: skip


class Located(ValueError):
    """Problems a model validator found at fields below its model, e.g. at one button of three."""

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{path}: {problem}" for path, problem in self.problems))


def problems_from(error: PydanticValidationError, model: type[BaseModel]) -> list[FieldProblem]:
    """One problem per error (more for a Located one), each at its dotted wire path."""
    problems: list[FieldProblem] = []
    for detail in error.errors(include_url=False):
        path = ".".join(str(part) for part in detail["loc"])
        located = (detail.get("ctx") or {}).get("error")
        if isinstance(located, Located):
            problems += (FieldProblem(_join(path, sub), text) for sub, text in located.problems)
        else:
            problems.append(FieldProblem(path, _describe(detail, model)))
    return problems


def shown(value: Any, limit: int = 40) -> str:
    """A value as repr, cut short so that a huge input never floods an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 2] + "…" + text[-1]


def _describe(detail: ErrorDetails, model: type[BaseModel]) -> str:
    kind, value = detail["type"], detail.get("input")
    if kind == "string_pattern_mismatch":
        pattern = (detail.get("ctx") or {}).get("pattern", "")
        return _PATTERN_PROBLEMS.get(pattern, f"must match {pattern}")
    if kind == "extra_forbidden":
        return _unknown_field(detail["loc"], model)
    template = _PROBLEMS.get(kind)
    if template is None:
        return str(detail["msg"]).removeprefix("Value error, ")
    facts = {
        "value": shown(value),
        "got": _got(value),
        "length": len(value) if isinstance(value, str) else "?",
        **(detail.get("ctx") or {}),
    }
    return template.format_map(facts)


def _got(value: Any) -> str:
    """What was given, in JSON's terms: `null`, `true`, `number 5`, `string 'yes'`."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return f"{_JSON_KINDS.get(type(value), type(value).__name__)} {shown(value)}"


def _unknown_field(loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    """Say which field was meant when the unknown one looks like a typo of a known one."""
    known = _wire_names(loc[:-1], model)
    folded = {name.casefold(): name for name in known}
    close = difflib.get_close_matches(str(loc[-1]).casefold(), folded, n=1, cutoff=0.75)
    if close:
        return f"unknown field; did you mean {folded[close[0]]!r}?"
    return f"unknown field; expected one of {', '.join(known)}" if known else "unknown field"


def _wire_names(loc: tuple[int | str, ...], model: type[BaseModel] | None) -> list[str]:
    """The wire names of the fields of the model found at `loc` (none if no model is there)."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, str):
            fields = model.model_fields.items()
            annotation = next((f.annotation for n, f in fields if part in (n, f.alias)), None)
            model = _model_in(annotation)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation such as `Header | None` or `list[Button]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, Union, types.UnionType):
        return next(filter(None, map(_model_in, get_args(annotation))), None)
    return None


def _join(path: str, sub: str) -> str:
    return f"{path}.{sub}" if path and sub else path or sub
