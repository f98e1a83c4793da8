"""The Zixflow reply-button message: the wire contract, written once, and a typed builder."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from producer.errors import ValidationError
from producer.validation import problems_from

MAX_BUTTONS = 3
HEADER_TEXT_MAX = 60
BODY_TEXT_MAX = 1024
FOOTER_TEXT_MAX = 60
TITLE_MAX = 20
BUTTON_ID_MAX = 256
PHONE_DIGITS = (8, 15)

_PHONE_NOISE = re.compile(r"[\s\-.()\[\]]")
_URL = re.compile(r"^https?://[^\s/?#]+\.?[^\s]*$", re.IGNORECASE)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return text


def _no_surrounding_space(text: str) -> str:
    if text != text.strip():
        raise PydanticCustomError("padded", "must not start or end with whitespace")
    return text


def _phone_number(value: object) -> object:
    """Strip spaces, dashes, dots, brackets and one leading + or 00, then check the digits."""
    if not isinstance(value, str):
        return value
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


Text = Annotated[str, AfterValidator(_not_blank)]
PhoneNumber = Annotated[str, BeforeValidator(_phone_number)]
MediaUrl = Annotated[str, BeforeValidator(_media_url)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Body(_Wire):
    """The message text: emojis, markdown and links allowed."""

    text: Annotated[Text, Field(max_length=BODY_TEXT_MAX)]


class Footer(_Wire):
    """The optional small print under the body."""

    text: Annotated[Text, Field(max_length=FOOTER_TEXT_MAX)]


class Header(_Wire):
    """The optional header: text, or an image, video or document by URL."""

    type: Literal["text", "image", "video", "document"]
    text: Annotated[Text, Field(max_length=HEADER_TEXT_MAX)] | None = None
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

    id: Annotated[str, Field(min_length=1, max_length=BUTTON_ID_MAX),
                  AfterValidator(_no_surrounding_space)]  # fmt: skip
    title: Annotated[Text, Field(min_length=1, max_length=TITLE_MAX)]


class Button(_Wire):
    """One reply button."""

    type: Literal["reply"] = "reply"
    reply: Reply


class Action(_Wire):
    """The buttons: one to three, with unique ids and titles."""

    buttons: Annotated[list[Button], Field(min_length=1, max_length=MAX_BUTTONS)]

    @pydantic.model_validator(mode="after")
    def _unique_buttons(self) -> Self:
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
    phone_id: Annotated[
        str, Field(alias="phoneId", min_length=1, max_length=64),
        AfterValidator(_no_surrounding_space),
    ]  # fmt: skip
    type: Literal["interactive"] = "interactive"
    interactive: Interactive
    source: Annotated[Text, Field(max_length=64)] = "API"
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


def parse_messages(
    items: Sequence[Mapping[str, Any] | ReplyButtonMessage],
) -> list[ReplyButtonMessage]:
    """Validate every item; raise one ValidationError naming each bad item's index."""
    messages: list[ReplyButtonMessage] = []
    errors: dict[int, ValidationError] = {}
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
    """Build a message without nested dicts; buttons are titles, (id, title) pairs or {id: title}."""
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
