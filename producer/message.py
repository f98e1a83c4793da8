"""The Zixflow reply-button message: the wire contract, written once, and a typed builder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic import ValidationError as PydanticValidationError

from producer.collector import collector_paused
from producer.errors import ValidationError
from producer.validation import (
    HttpUrl,
    Located,
    MediaUrl,
    PhoneNumber,
    as_seen,
    bounded_identifier,
    bounded_text,
    bounded_token,
    problems_from,
    shown,
)

MAX_BUTTONS = 3
HEADER_TEXT_MAX = 60
BODY_TEXT_MAX = 1024
FOOTER_TEXT_MAX = 60
TITLE_MAX = 20
BUTTON_ID_MAX = 256
PHONE_ID_MAX = 64
SOURCE_MAX = 64
IGNORED_IN_TITLES = "case, surrounding spaces and invisible characters"
HeaderKind = Literal["text", "image", "video", "document"]
HEADER_KINDS: tuple[HeaderKind, ...] = get_args(HeaderKind)

HeaderText = Annotated[str, bounded_text(HEADER_TEXT_MAX)]
BodyText = Annotated[str, bounded_text(BODY_TEXT_MAX, multiline=True)]
FooterText = Annotated[str, bounded_text(FOOTER_TEXT_MAX)]
Title = Annotated[str, bounded_text(TITLE_MAX)]
ButtonId = Annotated[str, bounded_identifier(BUTTON_ID_MAX)]
PhoneId = Annotated[str, bounded_token(PHONE_ID_MAX)]
Source = Annotated[str, bounded_text(SOURCE_MAX)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Body(_Wire):
    """The message text: emojis, markdown and links allowed."""

    text: BodyText


class Footer(_Wire):
    """The optional small print under the body."""

    text: FooterText


class Header(_Wire):
    """The optional header: text, or an image, video or document by URL; `type` names which."""

    type: HeaderKind
    text: HeaderText | None = None
    image: MediaUrl | None = None
    video: MediaUrl | None = None
    document: MediaUrl | None = None

    @model_validator(mode="after")
    def _content_matches_type(self) -> Self:
        required = f"is required when the header type is {self.type!r}"
        extra = f"must be left out when the header type is {self.type!r}"
        problems = [
            (kind, required if kind == self.type else extra)
            for kind in HEADER_KINDS
            if (getattr(self, kind) is None) == (kind == self.type)
        ]
        if problems:
            raise Located(problems)
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
    """The buttons: one to three, ids unique exactly, titles unique as a person sees them."""

    buttons: Annotated[list[Button], Field(min_length=1)]

    @model_validator(mode="after")
    def _few_and_unique(self) -> Self:
        count = len(self.buttons)
        if (
            count <= MAX_BUTTONS
            and len({button.reply.id for button in self.buttons}) == count
            and len({as_seen(button.reply.title) for button in self.buttons}) == count
        ):
            return self
        problems = list(self._duplicates("id", str)) + list(self._duplicates("title", as_seen))
        if count > MAX_BUTTONS:
            problem = f"is one too many: at most {MAX_BUTTONS} buttons are allowed, got {count}"
            problems.insert(0, (f"buttons.{MAX_BUTTONS}", problem))
        raise Located(problems)

    def _duplicates(self, field: str, key: Callable[[str], str]) -> Iterator[tuple[str, str]]:
        """Each button whose id or title repeats an earlier one's, located at that field."""
        first_with: dict[str, int] = {}
        for index, button in enumerate(self.buttons):
            value: str = getattr(button.reply, field)
            first = first_with.setdefault(key(value), index)
            if first != index:
                earlier: str = getattr(self.buttons[first].reply, field)
                problem = (
                    f"must be unique within the message; {shown(value)} is also button {first}"
                )
                if earlier != value:
                    problem += f" ({shown(earlier)}; {IGNORED_IN_TITLES} are ignored)"
                yield f"buttons.{index}.reply.{field}", problem


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
    report_url: HttpUrl | None = Field(None, alias="reportURL")

    def to_wire(self, *, media_form: Literal["string", "object"] = "string") -> dict[str, Any]:
        """The request body for Zixflow: camelCase, defaults filled in, no null fields.

        `media_form="object"` sends a media header as `{"link": url}` instead of the URL string.
        """
        wire = self.model_dump(by_alias=True, exclude_none=True)
        header = wire["interactive"].get("header")
        if header and media_form == "object" and header["type"] != "text":
            header[header["type"]] = {"link": header[header["type"]]}
        return wire

    def to_wire_json(self, *, media_form: Literal["string", "object"] = "string") -> str:
        """`to_wire()` as compact JSON, keys in a stable order, non-ASCII kept as is."""
        if media_form == "string":
            return self.model_dump_json(by_alias=True, exclude_none=True)
        wire = self.to_wire(media_form=media_form)
        return json.dumps(wire, ensure_ascii=False, separators=(",", ":"))


def parse_message(data: Mapping[str, Any] | ReplyButtonMessage) -> ReplyButtonMessage:
    """Validate a wire-shaped dict (or pass a built message through); raise ValidationError."""
    if isinstance(data, ReplyButtonMessage):
        return data
    try:
        return ReplyButtonMessage.model_validate(data)
    except PydanticValidationError as error:
        raise ValidationError(problems_from(error, ReplyButtonMessage)) from None


def parse_messages(
    items: Sequence[Mapping[str, Any] | ReplyButtonMessage],
) -> list[ReplyButtonMessage]:
    """Validate every item; raise one ValidationError naming each bad item's index."""
    messages: list[ReplyButtonMessage] = []
    errors: dict[int, ValidationError] = {}
    with collector_paused():
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
    """Build a message without nested dicts; raises ValidationError like `parse_message`.

    A button is a title (also used as its id), an (id, title) pair, or an entry of {id: title}.
    At most one header is given: text (`header`), or the URL of an image, video or document.
    """
    interactive: dict[str, Any] = {
        "body": {"text": body},
        "action": {"buttons": _buttons(buttons)},
    }
    contents = zip(HEADER_KINDS, (header, header_image, header_video, header_document), strict=True)
    given = {kind: content for kind, content in contents if content is not None}
    if given:
        interactive["header"] = {"type": next(iter(given)), **given}
    if footer is not None:
        interactive["footer"] = {"text": footer}
    return parse_message({
        "to": to, "phoneId": phone_id, "interactive": interactive, "source": source,
        "linkWithRecord": link_with_record, "submissionStatus": submission_status,
    })  # fmt: skip


def _buttons(buttons: Sequence[str | tuple[str, str]] | Mapping[str, str]) -> list[object]:
    if isinstance(buttons, Mapping):
        return [_button(pair) for pair in buttons.items()]
    return [_button(spec) for spec in ([buttons] if isinstance(buttons, str) else buttons)]


def _button(spec: object) -> object:
    """A button dict from a title or an (id, title) pair; anything else is left for the model."""
    if isinstance(spec, str):
        spec = (spec, spec)
    if isinstance(spec, tuple | list) and len(spec) == 2:
        return {"reply": {"id": spec[0], "title": spec[1]}}
    return spec
