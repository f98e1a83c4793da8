"""Rules for single wire values, and pydantic's errors told as problems a person can act on."""

from __future__ import annotations

import difflib
import functools
import ipaddress
import itertools
import json
import re
import reprlib
import types
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    TypeAdapter,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, ErrorDetails, PydanticCustomError, core_schema

from producer.errors import FieldProblem

# Rules as patterns for pydantic-core, whose Rust engine checks them far faster than Python.
CONTROL = r"\x00-\x1f\x7f-\x9f"
"""Unicode category Cc, as a character-class range."""
LINE_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
"""Category Cc less tab, line feed and carriage return (web forms send line breaks as CR LF)."""
INVISIBLE = r"\p{Cf}\p{Default_Ignorable_Code_Point}\u2800"
"""Format characters and blank fillers (zero-width space, U+3164 Hangul filler, braille blank)."""
VISIBLE = rf"[^\s{CONTROL}{INVISIBLE}]"
IDENTIFIER = rf"^[^\s{CONTROL}](?:[^{CONTROL}]*[^\s{CONTROL}])?$"
TOKEN = r"^[A-Za-z0-9_-]+$"

TEXT_ERROR = "text"
"""The error type of a text field pydantic-core refused; `problems_from` says what is wrong."""

PHONE_DIGITS_MIN, PHONE_DIGITS_MAX = 8, 15
_PHONE_NOISE = re.compile(r"[\s\-.()\[\]]")
_PHONE_START = re.compile(r"\s*\(?(?:\+|00(?=[0-9])|(?!00))[0-9]")
_WHITESPACE = re.compile(r"\s")
_CONTROLS = {False: re.compile(f"[{CONTROL}]"), True: re.compile(f"[{LINE_CONTROL}]")}
_PHONE_LENGTH = range(PHONE_DIGITS_MIN, PHONE_DIGITS_MAX + 1).__contains__
_PORT = re.compile(r"[0-9]{1,5}")
_IPV4_PART = re.compile(r"0x[0-9a-f]*|0[0-7]*|[1-9][0-9]{0,9}")  # lower case; 2**32 < 1e10
_PRINTABLE_INVISIBLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]"
)
"""The INVISIBLE characters that `str.isprintable()` lets through (a test checks the list)."""
_METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal"})
_METADATA_ADDRESSES = frozenset(map(ipaddress.ip_address, ["100.100.100.200", "fd00:ec2::254"]))
"""Cloud metadata services outside link-local space (Alibaba's; AWS's over IPv6)."""


@dataclass(frozen=True)
class VisibleText:
    """Text a person reads: 1 to `max_length` grapheme clusters, not blank, no control characters.

    Line breaks and tabs are allowed when `multiline`.
    """

    max_length: int
    multiline: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """Plain text passes pydantic-core's checks alone; only the rest costs a Python call."""
        line = LINE_CONTROL if self.multiline else CONTROL
        # A code point count within the limit is within it in grapheme clusters too.
        fast = core_schema.str_schema(
            strict=True, max_length=self.max_length, pattern=f"^[^{line}]*{VISIBLE}[^{line}]*$"
        )
        exact = core_schema.no_info_after_validator_function(
            self._checked, core_schema.str_schema(strict=True)
        )
        return core_schema.union_schema(
            [fast, exact],
            mode="left_to_right",
            custom_error_type=TEXT_ERROR,
            custom_error_message="invalid text",
            custom_error_context={"max_length": self.max_length, "multiline": self.multiline},
            serialization=core_schema.simple_ser_schema("str"),  # skip the union's type probe
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """A plain string schema: JSON Schema's maxLength counts code points, so it is left out."""
        limit = f"1 to {self.max_length} characters (grapheme clusters)"
        return {"type": "string", "minLength": 1, "description": f"{limit}, not blank"}

    def _checked(self, value: str) -> str:
        if text_problem(value, self.max_length, multiline=self.multiline):
            raise ValueError  # the union's TEXT_ERROR stands in for this error
        return value


def bounded_text(max_length: int, *, multiline: bool = False) -> VisibleText:
    """Text of 1 to `max_length` grapheme clusters, visible, with no control characters."""
    return VisibleText(max_length, multiline)


def bounded_identifier(max_length: int) -> Any:
    """A string of 1 to `max_length` characters, no whitespace around it, no control characters."""
    return StringConstraints(strict=True, min_length=1, max_length=max_length, pattern=IDENTIFIER)


def bounded_token(max_length: int) -> Any:
    """1 to `max_length` ASCII letters, digits, `_` and `-`: safe inside a Redis key name."""
    return StringConstraints(strict=True, min_length=1, max_length=max_length, pattern=TOKEN)


def text_problem(value: object, max_length: int, *, multiline: bool = False) -> str:
    """What is wrong with a text field's value, or "" when nothing is."""
    if not isinstance(value, str):
        return _PROBLEMS["string_type"].format(got=_got(value))
    if not value:
        return "must not be empty"
    if not _unicode_pattern(VISIBLE).search(value):
        return _blank_problem(value)
    control = _CONTROLS[multiline].search(value)
    if control:
        return _control_problem(control[0])
    return _length_problem(value, max_length)


def _blank_problem(text: str) -> str:
    if text.isspace():
        return "must not be blank"
    hidden = next(char for char in text if not char.isspace())
    return f"must not be blank: it has only invisible characters, such as U+{ord(hidden):04X}"


def _control_problem(char: str) -> str:
    return f"must not contain control character U+{ord(char):04X}"


def _length_problem(text: str, max_length: int) -> str:
    """Too many grapheme clusters, or ""; counted only so far, as crafted text may be huge."""
    if len(text) <= max_length:  # a grapheme cluster holds at least one code point
        return ""
    cap = 10 * max_length
    clusters = _unicode_pattern(r"\X").finditer(text)
    count = sum(1 for _ in itertools.islice(clusters, cap + 1))
    if count <= max_length:
        return ""
    got = count if count <= cap else f"more than {cap}"
    return f"must be at most {max_length} characters (grapheme clusters), got {got}"


def as_seen(text: str) -> str:
    """A key equal for texts a person cannot tell apart (Unicode form, invisibles, space, case)."""
    if text.isascii():
        return text.strip().casefold()  # nothing to normalise or drop: the common case, kept fast
    if not text.isprintable() or _PRINTABLE_INVISIBLE.search(text):  # rarely: spare the slow call
        text = _unicode_pattern(f"[{INVISIBLE}]+").sub("", text)
    # NFD, casefold, NFD: Unicode's canonical caseless match (D145), so "Café" composed or not.
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).strip().casefold())


@functools.cache
def _unicode_pattern(pattern: str) -> Any:
    """`pattern` compiled by the `regex` package, which knows Unicode properties and clusters.

    Imported on first use so that plain text, and `import producer`, never pay for it.
    """
    import regex  # type: ignore[import-untyped]  # noqa: PLC0415  # ships no type hints

    return regex.compile(pattern)


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
    if not _PHONE_START.match(value):  # e.g. "+-91...": no person writes a number so
        raise _refuse("must start with the country code, after any + or 00, got {value}", value)
    return digits


def normalised_phone(value: str) -> str | None:
    """A phone number as the producer stores it (digits only), or None if it is not one."""
    try:
        return str(_phone_number(value))
    except PydanticCustomError:
        return None


def _http_url(value: str) -> str:
    """Only http(s) URLs with a host name; none that hide credentials or reach cloud metadata."""
    control = _CONTROLS[False].search(value)
    if control:
        raise _refuse(_control_problem(control[0]), value)
    problem = _authority_problem(_http_parts(value))
    if problem:
        raise _refuse(problem, value)
    return value


def _http_parts(value: str) -> SplitResult:
    """The parts of an http(s) URL with a host name and no whitespace."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or _WHITESPACE.search(value):
        raise _refuse("must be an http(s) URL, got {value}", value)
    if not parts.hostname:
        raise _refuse("must be an http(s) URL with a host name, got {value}", value)
    return parts


def _authority_problem(parts: SplitResult) -> str:
    """What is wrong with a URL's user, port and host, as an error template; "" when nothing."""
    if "@" in parts.netloc:  # the value is not shown: it would put the secret into logs
        return "must not contain a user name or password (before an @)"
    port = parts.netloc.rpartition("]")[2].partition(":")[2]
    if port and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        return "must have a port from 1 to 65535, got {value}"
    if _reaches_metadata(parts.hostname or ""):
        return "must not point to a link-local or cloud metadata address, got {value}"
    return ""


def callback_url_problem(url: str, *, public_only: bool) -> str:
    """What is wrong with a callback URL, or ''; `public_only` also refuses private hosts."""
    try:
        _CALLBACK_URL.validate_python(url)
    except PydanticValidationError as error:
        return str(error.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
    if public_only and names_private_host(url):
        return "must name a public host (ZQ_CALLBACK_HOSTS=public): not loopback or private"
    return ""


def names_private_host(url: str) -> bool:
    """Whether a URL names a loopback, private or link-local host (by address, or `localhost`).

    Host names are judged by what they say, not resolved: the sender checks what they resolve
    to when it connects.
    """
    host = _folded_host(urlsplit(url).hostname or "")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _ip_address(host)
    return address is not None and not address.is_global


def _folded_host(hostname: str) -> str:
    """A URL's host as the WHATWG URL parsers of whoever fetches it (browsers, Node) read it:
    percent-decoded, width and case folded, trailing dot dropped."""
    host = unicodedata.normalize("NFKC", unquote(hostname)).casefold()
    return host.replace("\u3002", ".").rstrip(".")  # the ideographic full stop is a dot there


def _reaches_metadata(hostname: str) -> bool:
    """Whether a URL's host is link-local or a cloud metadata service, a classic SSRF target.

    IPv4 counts in number forms too, as URL parsers read it.
    """
    host = _folded_host(hostname)
    if host in _METADATA_HOSTS:
        return True
    address = _ip_address(host)
    return address is not None and (address.is_link_local or address in _METADATA_ADDRESSES)


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, an IPv4-mapped IPv6 one as IPv4; None for a name."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])  # without an IPv6 zone
    except ValueError:
        return _whatwg_ipv4(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _whatwg_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """IPv4 as URL parsers also read it: 2852039166, 0xa9fea9fe, 0251.0376.0251.0376, ..."""
    parts = host.split(".")
    if len(parts) > 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        return None
    *leading, last = (_ipv4_number(part) for part in parts)
    if any(number > 255 for number in leading) or last >= 256 ** (4 - len(leading)):
        return None
    return ipaddress.IPv4Address(sum(n << 8 * (3 - i) for i, n in enumerate(leading)) + last)


def _ipv4_number(part: str) -> int:
    """One dotted part: hexadecimal after 0x, octal after a leading 0, else decimal."""
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    return int(part, 8 if part.startswith("0") else 10)


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


def _identifier_problem(value: str) -> str:
    control = _CONTROLS[False].search(value.strip())
    return _control_problem(control[0]) if control else "must not start or end with whitespace"


_PATTERN_PROBLEMS: dict[str, Callable[[str], str]] = {
    IDENTIFIER: _identifier_problem,
    TOKEN: lambda value: f"must contain only ASCII letters, digits, _ and -, got {shown(value)}",
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


class _Brief(reprlib.Repr):
    """repr that stops a few levels and items deep: crafted input may nest 100,000 levels."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = 4

    def repr_int(self, x: int, level: int) -> str:
        """Huge integers by size: repr refuses those of over 4,300 digits."""
        return super().repr_int(x, level) if x.bit_length() < 10_000 else "<huge number>"


_BRIEF = _Brief()


def shown(value: Any, limit: int = 40) -> str:
    """A value as repr, cut short so that a huge or deep input never floods an error message."""
    text = repr(value) if isinstance(value, str) else _BRIEF.repr(value)
    return text if len(text) <= limit else text[: limit - 2] + "…" + text[-1]


def _describe(detail: ErrorDetails, model: type[BaseModel]) -> str:
    kind, value, context = detail["type"], detail.get("input"), detail.get("ctx") or {}
    if kind == TEXT_ERROR:
        return text_problem(value, context["max_length"], multiline=context["multiline"])
    if kind == "string_pattern_mismatch":
        return _PATTERN_PROBLEMS[context["pattern"]](value)
    if kind == "extra_forbidden":
        return _unknown_field(detail["loc"], model)
    template = _PROBLEMS.get(kind)
    if template is None:
        return str(detail["msg"]).removeprefix("Value error, ")
    facts = {
        "value": shown(value),
        "got": _got(value),
        "length": len(value) if isinstance(value, str) else "?",
        **context,
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


_CALLBACK_URL: TypeAdapter[str] = TypeAdapter(HttpUrl)
