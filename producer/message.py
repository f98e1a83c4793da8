"""The Zixflow reply-button message: the wire contract, written once, and a typed builder."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from producer.errors import ValidationError
from producer.validation import NO_SURROUNDING_SPACE, NOT_BLANK, problems_from

MAX_BUTTONS = 3
HEADER_TEXT_MAX = 60
BODY_TEXT_MAX = 1024
FOOTER_TEXT_MAX = 60
TITLE_MAX = 20
BUTTON_ID_MAX = 256
PHONE_DIGITS = (8, 15)

_PHONE_NOISE = re.compile(r"[\s\-.()\[\]]")
_URL = re.compile(r"^https?://[^\s/?#]+\.?[^\s]*$", re.IGNORECASE)


def _text(max_length: int) -> Any:
    """A text field of 1 to `max_length` characters, not all whitespace."""
    return StringConstraints(min_length=1, max_length=max_length, pattern=NOT_BLANK)


def _identifier(max_length: int) -> Any:
    """An id of 1 to `max_length` characters with no whitespace around it."""
    return StringConstraints(min_length=1, max_length=max_length, pattern=NO_SURROUNDING_SPACE)


def _phone_number(value: object) -> object:
    """Strip spaces, dashes, dots, brackets and one leading + or 00, then check the digits."""
    if not isinstance(value, str):
        return value
    if value.isascii() and value.isdigit() and value[0] != "0" and 8 <= len(value) <= 15:
        return value  # already in shape: the common case, kept fast
    digits = _PHONE_NOISE.sub("", value)
    digits = digits[1:] if digits.startswith("+") else digits
    digits = digits[2:] if digits.startswith("00") else digits
    low, high = PHONE_DIGITS
    if not (digits.isascii() and digits.isdigit()):
        raise PydanticCustomError(
            "phone", "must be a phone number in international format, digits only, got {value}",
            {"value": _short(value)},
        )  # fmt: skip
    if not low <= len(digits) <= high or digits[0] == "0":
        raise PydanticCustomError(
            "phone",
            "must have 8 to 15 digits with the country code first and no leading zero, "
            "got {count} digits",
            {"count": len(digits)},
        )
    return digits


def _media_url(value: object) -> object:
    """Accept the page's URL string or the Cloud API's {"link": url} object; keep the URL."""
    if isinstance(value, Mapping):
        if set(value) != {"link"}:
            raise PydanticCustomError("media", 'must be a URL string or {"link": url}')
        value = value["link"]
    if isinstance(value, str) and not _URL.match(value):
        raise PydanticCustomError(
            "url", "must be an http(s) URL, got {value}", {"value": _short(value)}
        )
    return value


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


PhoneNumber = Annotated[str, BeforeValidator(_phone_number)]
HeaderText = Annotated[str, _text(HEADER_TEXT_MAX)]
BodyText = Annotated[str, _text(BODY_TEXT_MAX)]
FooterText = Annotated[str, _text(FOOTER_TEXT_MAX)]
Title = Annotated[str, _text(TITLE_MAX)]
ButtonId = Annotated[str, _identifier(BUTTON_ID_MAX)]
PhoneId = Annotated[str, _identifier(64)]
Source = Annotated[str, _text(64)]
MediaUrl = Annotated[str, BeforeValidator(_media_url)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Body(_Wire):
    """The message text: emojis, markdown and links allowed."""

    text: BodyText


class Footer(_Wire):
    """The optional small print under the body."""

    text: FooterText


class Header(_Wire):
    """The optional header: text, or an image, video or document by URL."""

    type: Literal["text", "image", "video", "document"]
    text: HeaderText | None = None
    image: MediaUrl | None = None
    video: MediaUrl | None = None
    document: MediaUrl | None = None

    @pydantic.model_validator(mode="after")
    def _content_matches_type(self) -> Self:
        given = [kind for kind in ("text", "image", "video", "document") if getattr(self, kind)]
        if self.type not in given:
            raise PydanticCustomError(
                "header", "header of type {kind} needs a {kind} field", {"kind": self.type}
            )
        if given != [self.type]:
            others = ", ".join(kind for kind in given if kind != self.type)
            raise PydanticCustomError(
                "header", "header of type {kind} must not also have {others}",
                {"kind": self.type, "others": others},
            )  # fmt: skip
        return self


class Reply(_Wire):
    """A reply button's id (sent back on tap) and its visible title."""

    id: ButtonId
    title: Title


class Button(_Wire):
    """One reply button."""

    type: Literal["reply"] = "reply"
    reply: Reply


class Action(_Wire):
    """The buttons: one to three, with unique ids and titles."""

    buttons: Annotated[list[Button], Field(min_length=1, max_length=MAX_BUTTONS)]

    @pydantic.model_validator(mode="after")
    def _unique_buttons(self) -> Self:
        ids = {button.reply.id for button in self.buttons}
        titles = {button.reply.title.casefold() for button in self.buttons}
        if len(ids) == len(titles) == len(self.buttons):
            return self
        for field in ("id", "title"):
            seen: dict[str, int] = {}
            for index, button in enumerate(self.buttons):
                value = getattr(button.reply, field)
                key = value.casefold() if field == "title" else value
                if key in seen:
                    raise DuplicateButton(index, field, value, seen[key])
                seen[key] = index
        return self


class DuplicateButton(ValueError):
    """A repeated button id or title, located so the error can name the button's path."""

    def __init__(self, index: int, field: str, value: str, first: int) -> None:
        self.path = f"buttons.{index}.reply.{field}"
        self.problem = (
            f"must be unique within the message; {_short(value)} is also button {first}'s {field}"
        )
        super().__init__(f"{self.path}: {self.problem}")


class Interactive(_Wire):
    """The interactive part of the message: header, body, footer and buttons."""

    type: Literal["button"] = "button"
    header: Header | None = None
    body: Body
    footer: Footer | None = None
    action: Action


class ReplyButtonMessage(_Wire):
    """A WhatsApp interactive reply-button message, in the shape Zixflow's API takes."""

    to: PhoneNumber
    phone_id: PhoneId = Field(alias="phoneId")
    type: Literal["interactive"] = "interactive"
    interactive: Interactive
    source: Source = "API"
    link_with_record: StrictBool = Field(False, alias="linkWithRecord")
    submission_status: StrictBool = Field(False, alias="submissionStatus")
    report_url: MediaUrl | None = Field(None, alias="reportURL")

    def to_wire(self, *, media_form: Literal["string", "object"] = "string") -> dict[str, Any]:
        """The request body for Zixflow: camelCase, defaults filled in, no null fields."""
        wire = self.model_dump(by_alias=True, exclude_none=True)
        header = wire["interactive"].get("header")
        if header and media_form == "object" and header["type"] != "text":
            header[header["type"]] = {"link": header[header["type"]]}
        return wire


def parse_message(data: Mapping[str, Any] | ReplyButtonMessage) -> ReplyButtonMessage:
    """Validate a wire-shaped dict (or pass a built message through); raise ValidationError."""
    if isinstance(data, ReplyButtonMessage):
        return data
    try:
        return ReplyButtonMessage.model_validate(data)
    except PydanticValidationError as error:
        raise ValidationError(problems_from(error)) from None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is built.

    Every model a batch creates survives, so the collector would scan the growing heap again
    and again for nothing: that made validating 10,000 messages eight times slower.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_messages(
    items: Sequence[Mapping[str, Any] | ReplyButtonMessage],
) -> list[ReplyButtonMessage]:
    """Validate every item; raise one ValidationError naming each bad item's index."""
    messages: list[ReplyButtonMessage] = []
    errors: dict[int, ValidationError] = {}
    with _collector_paused():
        for index, item in enumerate(items):
            try:
                messages.append(parse_message(item))
            except ValidationError as error:
                errors[index] = error
    if errors:
        raise ValidationError.for_batch(errors)
    return messages


def reply_buttons(
    *,
    to: str,
    phone_id: str,
    body: str,
    buttons: Sequence[str | tuple[str, str]] | Mapping[str, str],
    header: str | None = None,
    header_image: str | None = None,
    header_video: str | None = None,
    header_document: str | None = None,
    footer: str | None = None,
    submission_status: bool = False,
    link_with_record: bool = False,
    source: str = "API",
) -> ReplyButtonMessage:
    """Build a message without nested dicts; buttons: titles, (id, title) pairs or {id: title}."""
    pairs = (
        buttons.items()
        if isinstance(buttons, Mapping)
        else [(button, button) if isinstance(button, str) else button for button in buttons]
    )
    interactive: dict[str, Any] = {
        "body": {"text": body},
        "action": {"buttons": [{"reply": {"id": i, "title": t}} for i, t in pairs]},
    }
    media = {"text": header, "image": header_image, "video": header_video,
             "document": header_document}  # fmt: skip
    given = {kind: value for kind, value in media.items() if value is not None}
    if given:
        interactive["header"] = {"type": next(iter(given)), **given}
    if footer is not None:
        interactive["footer"] = {"text": footer}
    return parse_message({
        "to": to, "phoneId": phone_id, "interactive": interactive, "source": source,
        "linkWithRecord": link_with_record, "submissionStatus": submission_status,
    })  # fmt: skip
