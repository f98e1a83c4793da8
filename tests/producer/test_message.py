"""The wire contract: every limit at and just past its edge, error texts, wire output, builder."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest

from producer.errors import FieldProblem, ValidationError
from producer.message import ReplyButtonMessage, parse_message, parse_messages, reply_buttons
from producer.validation import (
    INVISIBLE,
    HttpUrl,
    Located,
    MediaUrl,
    PhoneNumber,
    as_seen,
    bounded_text,
    shown,
    text_problem,
)
from tests.support import wire_message

SAMPLE_DIR = Path(__file__).parent.parent / "data" / "messages"
SAMPLES = sorted(SAMPLE_DIR.glob("*.json"))
BUTTONS = "interactive.action.buttons"
TITLE0 = f"{BUTTONS}.0.reply.title"
ID0 = f"{BUTTONS}.0.reply.id"
IMAGE_URL = "https://cdn.example.com/a.png"
CLUSTERS = "characters (grapheme clusters)"
IGNORED = "case, surrounding spaces and invisible characters"


def with_values(**changes: Any) -> dict[str, Any]:
    """The standard wire message with values set at dotted paths (`__` stands for `.`)."""
    message: dict[str, Any] = copy.deepcopy(wire_message())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node: Any = message
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return message


def set_at(path: str, value: Any) -> dict[str, Any]:
    """The standard wire message with one value set at a dotted wire path."""
    return with_values(**{path.replace(".", "__"): value})


def buttons(*titles: str, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Reply buttons with these titles (ids default to b0, b1, ...)."""
    ids = ids or [f"b{index}" for index in range(len(titles))]
    return [
        {"type": "reply", "reply": {"id": id_, "title": title}}
        for id_, title in zip(ids, titles, strict=True)
    ]


def problems(data: Any) -> dict[str, str]:
    """The problems parse_message finds, by wire path."""
    with pytest.raises(ValidationError) as refused:
        parse_message(data)
    return {problem.path: problem.problem for problem in refused.value.problems}


def header(kind: str, content: Any) -> dict[str, Any]:
    return set_at("interactive.header", {"type": kind, kind: content})


def sample(stem: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLE_DIR / f"{stem}.json").read_text(encoding="utf-8"))
    return data


# --- valid messages and the wire output ---


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.stem)
def test_sample_payloads_parse_and_survive_a_round_trip(sample: Path) -> None:
    message = parse_message(json.loads(sample.read_text(encoding="utf-8")))
    wire = message.to_wire()
    assert parse_message(wire) == message
    assert parse_message(wire).to_wire() == wire
    assert "null" not in message.to_wire_json()


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("minimal", {"to": "919876543210", "type": "interactive", "source": "API",
                     "linkWithRecord": False, "submissionStatus": False, "reportURL": None}),
        ("text_header_all_fields", {"to": "14155550100", "source": "crm", "linkWithRecord": True,
                                    "submissionStatus": True}),
        ("image_header_url_string", {"to": "919876543210", "source": "shop-backend",
                                     "linkWithRecord": False, "submissionStatus": True}),
        ("image_header_link_object", {"to": "442079460958", "submissionStatus": False}),
        ("document_header_link_object", {
            "to": "14155550100", "linkWithRecord": True,
            "reportURL": "https://hooks.example.com/zixflow/delivery?tenant=acme"}),
        ("document_header_report_url", {
            "to": "919876543210", "reportURL": "https://hooks.example.com/zixflow/delivery"}),
    ],
)  # fmt: skip
def test_sample_top_level_fields_on_the_wire(stem: str, expected: dict[str, Any]) -> None:
    wire = parse_message(sample(stem)).to_wire()
    assert {name: wire.get(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("stem", "kind", "url"),
    [
        ("image_header_url_string", "image", "https://cdn.example.com/products/sku-1182.jpg"),
        ("image_header_link_object", "image", "https://cdn.example.com/promo/summer-sale.jpg"),
        ("document_header_link_object", "document",
         "https://files.example.com/policies/POL-88213.pdf"),
        ("document_header_report_url", "document",
         "https://files.example.com/invoices/INV-2024-0042.pdf"),
    ],
)  # fmt: skip
def test_sample_media_header_goes_out_in_the_chosen_form(stem: str, kind: str, url: str) -> None:
    message = parse_message(sample(stem))
    assert message.to_wire()["interactive"]["header"] == {"type": kind, kind: url}
    object_form = message.to_wire(media_form="object")["interactive"]["header"]
    assert object_form == {"type": kind, kind: {"link": url}}
    assert message.to_wire()["interactive"]["header"] == {"type": kind, kind: url}  # unchanged


def test_sample_text_header_and_footer_reach_the_wire() -> None:
    interactive = parse_message(sample("text_header_all_fields")).to_wire()["interactive"]
    assert interactive["header"] == {"type": "text", "text": "Appointment reminder 🗓️"}
    assert interactive["footer"] == {"text": "Reply STOP to opt out"}
    assert [button["reply"]["id"] for button in interactive["action"]["buttons"]] == [
        "appt-8812-confirm",
        "appt-8812-reschedule",
        "appt-8812-cancel",
    ]


def test_wire_output_fills_in_defaults_and_leaves_out_nones() -> None:
    minimal = {
        "to": "919876543210",
        "phoneId": "1234",
        "interactive": {
            "body": {"text": "Hi"},
            "action": {"buttons": [{"reply": {"id": "y", "title": "Yes"}}]},
        },
    }
    assert parse_message(minimal).to_wire() == {
        "to": "919876543210",
        "phoneId": "1234",
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Hi"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]},
        },
        "source": "API",
        "linkWithRecord": False,
        "submissionStatus": False,
    }


def test_all_optional_fields_reach_the_wire() -> None:
    data = with_values(
        interactive__header={"type": "text", "text": "Order #42"},
        interactive__footer={"text": "Reply within 24h"},
        source="crm",
        linkWithRecord=True,
        submissionStatus=True,
        reportURL="https://hooks.example.com/reports",
    )
    wire = parse_message(data).to_wire()
    assert wire["interactive"]["header"] == {"type": "text", "text": "Order #42"}
    assert wire["interactive"]["footer"] == {"text": "Reply within 24h"}
    assert (wire["source"], wire["linkWithRecord"], wire["submissionStatus"]) == ("crm", True, True)
    assert wire["reportURL"] == "https://hooks.example.com/reports"


@pytest.mark.parametrize("media_form", ["string", "object"])
def test_wire_json_is_the_wire_dict_as_compact_json(media_form: str) -> None:
    data = with_values(interactive__body={"text": 'Ünïcode ✓ 👍\nnew line "quoted"'})
    data["interactive"]["header"] = {"type": "image", "image": IMAGE_URL}
    message = parse_message(data)
    text = message.to_wire_json(media_form=media_form)  # type: ignore[arg-type]
    wire = message.to_wire(media_form=media_form)  # type: ignore[arg-type]
    assert text == json.dumps(wire, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("kind", ["image", "video", "document"])
@pytest.mark.parametrize("given", [IMAGE_URL, {"link": IMAGE_URL}], ids=["string", "object"])
def test_media_header_is_taken_in_either_form_and_sent_in_the_chosen_one(
    kind: str, given: Any
) -> None:
    message = parse_message(header(kind, given))
    assert getattr(message.interactive.header, kind) == IMAGE_URL
    string_form = message.to_wire()["interactive"]["header"]
    object_form = message.to_wire(media_form="object")["interactive"]["header"]
    assert string_form == {"type": kind, kind: IMAGE_URL}
    assert object_form == {"type": kind, kind: {"link": IMAGE_URL}}


def test_text_header_is_the_same_in_both_media_forms() -> None:
    message = parse_message(header("text", "Hello"))
    assert message.to_wire(media_form="object") == message.to_wire()


def test_fields_may_be_given_by_python_name_too() -> None:
    data = with_values(phone_id="99", link_with_record=True, submission_status=True)
    del data["phoneId"]
    data["report_url"] = "https://hooks.example.com/r"
    message = parse_message(data)
    assert (message.phone_id, message.link_with_record, message.submission_status) == (
        "99",
        True,
        True,
    )
    assert message.to_wire()["reportURL"] == "https://hooks.example.com/r"


def test_a_built_message_is_returned_as_is() -> None:
    message = parse_message(wire_message())
    assert parse_message(message) is message


def test_messages_are_immutable() -> None:
    message = parse_message(wire_message())
    with pytest.raises(pydantic.ValidationError):
        message.to = "14155550100"  # type: ignore[misc]


# --- limits, at the edge and just past it ---


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (TITLE0, "t" * 20),
        (TITLE0, "👍" * 20),
        (ID0, "i" * 256),
        ("interactive.body.text", "b" * 1024),
        ("interactive.body.text", "é" * 1024),
        ("interactive.footer", {"text": "f" * 60}),
        ("interactive.header", {"type": "text", "text": "h" * 60}),
        ("phoneId", "9" * 64),
        (BUTTONS, buttons("One")),
        (BUTTONS, buttons("One", "Two", "Three")),
        (TITLE0, " Yes "),
    ],
    ids=lambda value: str(value)[:30],
)
def test_values_at_the_limits_are_accepted(path: str, value: Any) -> None:
    parse_message(set_at(path, value))


@pytest.mark.parametrize(
    ("path", "value", "where", "problem"),
    [
        (TITLE0, "t" * 21, TITLE0, f"must be at most 20 {CLUSTERS}, got 21"),
        (TITLE0, "👍" * 21, TITLE0, f"must be at most 20 {CLUSTERS}, got 21"),
        (TITLE0, "", TITLE0, "must not be empty"),
        (TITLE0, "  \t", TITLE0, "must not be blank"),
        (ID0, "i" * 257, ID0, "must be at most 256 characters, got 257"),
        (ID0, "", ID0, "must not be empty"),
        (ID0, " yes", ID0, "must not start or end with whitespace"),
        (ID0, "yes\n", ID0, "must not start or end with whitespace"),
        (ID0, " yes ", ID0, "must not start or end with whitespace"),
        (ID0, "   ", ID0, "must not start or end with whitespace"),
        ("interactive.body.text", "b" * 1025, "interactive.body.text",
         f"must be at most 1024 {CLUSTERS}, got 1025"),
        ("interactive.body.text", " \n ", "interactive.body.text", "must not be blank"),
        ("interactive.body.text", "", "interactive.body.text", "must not be empty"),
        ("interactive.body", {}, "interactive.body.text", "is required"),
        ("interactive.footer", {"text": "f" * 61}, "interactive.footer.text",
         f"must be at most 60 {CLUSTERS}, got 61"),
        ("interactive.footer", {"text": "   "}, "interactive.footer.text", "must not be blank"),
        ("interactive.footer", {}, "interactive.footer.text", "is required"),
        ("interactive.footer", {"text": ""}, "interactive.footer.text", "must not be empty"),
        ("interactive.header", {"type": "text", "text": "h" * 61}, "interactive.header.text",
         f"must be at most 60 {CLUSTERS}, got 61"),
        ("interactive.header", {"type": "text", "text": " "}, "interactive.header.text",
         "must not be blank"),
        ("interactive.header", {"type": "text", "text": ""}, "interactive.header.text",
         "must not be empty"),
        ("interactive.header", {"type": "text", "text": 5}, "interactive.header.text",
         "must be a string, got number 5"),
        ("phoneId", "9" * 65, "phoneId", "must be at most 64 characters, got 65"),
        ("phoneId", "", "phoneId", "must not be empty"),
        ("phoneId", " 123", "phoneId",
         "must contain only ASCII letters, digits, _ and -, got ' 123'"),
        ("phoneId", 123, "phoneId", "must be a string, got number 123"),
        (BUTTONS, [], BUTTONS, "must have at least 1 item(s), got 0"),
        (BUTTONS, buttons("1", "2", "3", "4"), f"{BUTTONS}.3",
         "is one too many: at most 3 buttons are allowed, got 4"),
        (BUTTONS, {"reply": {}}, BUTTONS, "must be a list, got object {'reply': {}}"),
        (f"{BUTTONS}.0.type", "url", f"{BUTTONS}.0.type", "must be 'reply', got 'url'"),
        ("interactive.type", "list", "interactive.type", "must be 'button', got 'list'"),
        ("type", "text", "type", "must be 'interactive', got 'text'"),
        ("source", "", "source", "must not be empty"),
        ("interactive", "hello", "interactive", "must be an object, got string 'hello'"),
    ],
    ids=lambda value: str(value)[:30],
)  # fmt: skip
def test_values_past_the_limits_are_refused_at_their_path(
    path: str, value: Any, where: str, problem: str
) -> None:
    assert problems(set_at(path, value)) == {where: problem}


@pytest.mark.parametrize("missing", ["to", "phoneId", "interactive"])
def test_required_top_level_fields(missing: str) -> None:
    data = wire_message()
    del data[missing]
    assert problems(data) == {missing: "is required"}


def test_a_missing_action_is_named() -> None:
    data = wire_message()
    del data["interactive"]["action"]  # type: ignore[attr-defined]
    assert problems(data) == {"interactive.action": "is required"}


def test_too_many_buttons_are_named_from_the_first_extra_one() -> None:
    found = problems(set_at(BUTTONS, buttons("1", "2", "3", "4", "5")))
    assert list(found) == [f"{BUTTONS}.3"]
    assert "got 5" in found[f"{BUTTONS}.3"]


@pytest.mark.parametrize("data", ["a message", ["list"], None, 42])
def test_a_message_that_is_not_an_object_is_refused_as_a_whole(data: Any) -> None:
    assert list(problems(data)) == [""]


# --- text a person reads: visible, no control characters, counted as seen ---

TEXTS = [TITLE0, "interactive.header.text", "interactive.body.text", "interactive.footer.text"]
SINGLE_LINE_TEXTS = [path for path in TEXTS if path != "interactive.body.text"]
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: five code points, one glyph
BLANK_TEXTS = [
    "\u200b", "\u3164", "\u2800", "\x00", "\ufeff", " \u200b ", "\u3164 \u2800",
    "\u2060\u200d\ufe0f", "\u115f\u1160\uffa0", "\xad\u034f", "\x00\t \u200b",
]  # fmt: skip


def with_text(path: str, text: str) -> dict[str, Any]:
    """The standard message with `text` at one of the TEXTS paths (a text header if there)."""
    message = set_at(path, text)
    if path.startswith("interactive.header"):
        message["interactive"]["header"]["type"] = "text"
    return message


@pytest.mark.parametrize("text", BLANK_TEXTS, ids=ascii)
@pytest.mark.parametrize("path", TEXTS)
def test_invisible_text_is_refused_as_blank(path: str, text: str) -> None:
    assert problems(with_text(path, text))[path].startswith(
        "must not be blank: it has only invisible characters, such as U+"
    )


def test_the_blank_problem_names_an_invisible_character() -> None:
    assert problems(with_text(TITLE0, " \u200b")) == {
        TITLE0: "must not be blank: it has only invisible characters, such as U+200B"
    }


@pytest.mark.parametrize(
    ("text", "code"),
    [("Yes\x00", "U+0000"), ("\x1b[31mRed", "U+001B"), ("Del\x7f", "U+007F"),
     ("Next\x85line", "U+0085"), ("é\x00" * 40, "U+0000")],  # the last is long, too
    ids=ascii,
)  # fmt: skip
@pytest.mark.parametrize("path", TEXTS)
def test_control_characters_are_refused_by_name(path: str, text: str, code: str) -> None:
    assert problems(with_text(path, text)) == {path: f"must not contain control character {code}"}


@pytest.mark.parametrize(
    ("text", "code"), [("Yes\tNo", "U+0009"), ("Two\nlines", "U+000A"), ("Two\r\nlines", "U+000D")]
)
@pytest.mark.parametrize("path", SINGLE_LINE_TEXTS)
def test_line_breaks_and_tabs_are_control_characters_outside_the_body(
    path: str, text: str, code: str
) -> None:
    assert problems(with_text(path, text)) == {path: f"must not contain control character {code}"}


def test_the_body_keeps_line_breaks_and_tabs() -> None:
    text = "Order #42:\n\t2 teas\r\n\t1 cake\n\nConfirm?"
    assert parse_message(with_text("interactive.body.text", text)).interactive.body.text == text


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [(ID0, "yes\x00", "U+0000"), (ID0, "y\x85es", "U+0085"), ("source", "crm\x07", "U+0007")],
    ids=ascii,
)
def test_ids_and_the_source_refuse_control_characters(path: str, value: str, code: str) -> None:
    assert problems(set_at(path, value)) == {path: f"must not contain control character {code}"}


@pytest.mark.parametrize("text", ["Café", "नमस्ते", "\u200bJa", "🇮🇳 ✓", "\u3164한", FAMILY])
@pytest.mark.parametrize("path", TEXTS)
def test_visible_text_in_any_script_is_accepted(path: str, text: str) -> None:
    parse_message(with_text(path, text))


@pytest.mark.parametrize("character", [FAMILY, "🇮🇳", "e\u0301"], ids=ascii)
@pytest.mark.parametrize(
    ("path", "limit"),
    [(TITLE0, 20), ("interactive.header.text", 60), ("interactive.body.text", 1024),
     ("interactive.footer.text", 60)],
)  # fmt: skip
def test_text_limits_count_grapheme_clusters(path: str, limit: int, character: str) -> None:
    parse_message(with_text(path, character * limit))
    assert problems(with_text(path, character * (limit + 1))) == {
        path: f"must be at most {limit} {CLUSTERS}, got {limit + 1}"
    }


def test_a_title_of_family_emoji_fits_as_it_looks() -> None:
    title = f"Trip {FAMILY}{FAMILY}{FAMILY}{FAMILY}"  # 25 code points, 9 characters on screen
    assert (
        parse_message(with_text(TITLE0, title)).interactive.action.buttons[0].reply.title == title
    )
    assert problems(with_text(TITLE0, f"Trip {FAMILY * 16}")) == {
        TITLE0: f"must be at most 20 {CLUSTERS}, got 21"
    }


def test_a_huge_text_is_counted_only_so_far() -> None:
    found = problems(with_text("interactive.body.text", "e\u0301" * 1_000_000))
    assert found == {
        "interactive.body.text": f"must be at most 1024 {CLUSTERS}, got more than 10240"
    }


UNICODE_RANGES = [(0, 0x3100), (0xFE00, 0x10000), (0x1BCA0, 0x1BCA4), (0x1D173, 0x1D17B),
                  (0xE0000, 0xE0080), (0xE0100, 0xE01F0)]  # fmt: skip
"""Where the control, format, blank and default-ignorable characters are."""
UNICODE_SAMPLE = [chr(point) for low, high in UNICODE_RANGES for point in range(low, high)]


@pytest.mark.parametrize("multiline", [False, True])
def test_the_fast_path_accepts_exactly_what_the_exact_check_accepts(multiline: bool) -> None:
    adapter = pydantic.TypeAdapter(Annotated[str, bounded_text(5, multiline=multiline)])

    def accepted(text: str) -> bool:
        try:
            adapter.validate_python(text)
        except pydantic.ValidationError:
            return False
        return True

    texts = [text for char in UNICODE_SAMPLE for text in (char, f"a{char}", f" {char} ")]
    disagreeing = [
        text
        for text in texts
        if accepted(text) != (text_problem(text, 5, multiline=multiline) == "")
    ]
    assert disagreeing == []


def test_plain_text_never_imports_the_regex_package() -> None:
    code = (
        "import json, sys, producer\n"
        f"producer.message.parse_message(json.loads({json.dumps(json.dumps(wire_message()))}))\n"
        "print('regex' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_text_fields_have_a_plain_json_schema() -> None:
    reply = ReplyButtonMessage.model_json_schema()["$defs"]["Reply"]["properties"]
    assert reply["title"] == {
        "type": "string", "minLength": 1, "title": "Title",
        "description": f"1 to 20 {CLUSTERS}, not blank",
    }  # fmt: skip


# --- unique buttons ---


@pytest.mark.parametrize(
    ("titles", "where", "problem"),
    [
        (("Yes", "Yes"), f"{BUTTONS}.1.reply.title",
         "must be unique within the message; 'Yes' is also button 0"),
        (("Yes", "No", "YES"), f"{BUTTONS}.2.reply.title",
         "must be unique within the message; 'YES' is also button 0 ('Yes'; "
         f"{IGNORED} are ignored)"),
        (("No", " Yes ", "yes"), f"{BUTTONS}.2.reply.title",
         "must be unique within the message; 'yes' is also button 1 (' Yes '; "
         f"{IGNORED} are ignored)"),
    ],
)  # fmt: skip
def test_duplicate_titles_are_named_at_the_later_button(
    titles: tuple[str, ...], where: str, problem: str
) -> None:
    assert problems(set_at(BUTTONS, buttons(*titles))) == {where: problem}


def test_duplicate_ids_are_named_at_the_later_button() -> None:
    found = problems(set_at(BUTTONS, buttons("Yes", "No", "Maybe", ids=["a", "b", "a"])))
    assert found == {
        f"{BUTTONS}.2.reply.id": "must be unique within the message; 'a' is also button 0"
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [("Yes", "Yes\u200b"), ("Café", "Cafe\u0301"), ("Café", " CAFE\u0301"),
     ("Yes", "\u2060yes\ufeff"), ("No", "N\u034fo"), ("Yes", "Yes\u3164"), ("Straße", "STRASSE")],
    ids=ascii,
)  # fmt: skip
def test_titles_a_person_cannot_tell_apart_are_duplicates(first: str, second: str) -> None:
    assert problems(set_at(BUTTONS, buttons(first, second))) == {
        f"{BUTTONS}.1.reply.title": f"must be unique within the message; {shown(second)} is "
        f"also button 0 ({shown(first)}; {IGNORED} are ignored)"
    }


def test_no_invisible_character_tells_titles_apart() -> None:
    import regex  # type: ignore[import-untyped]  # noqa: PLC0415  # only this test needs it

    invisible = regex.findall(f"[{INVISIBLE}]", "".join(map(chr, range(0x110000))))
    assert len(invisible) > 4000
    assert [
        ascii(char)
        for char in invisible
        if as_seen(f"Yes{char}") != "yes" or as_seen(f"\u200bNo{char}") != "no"
    ] == []


@pytest.mark.parametrize(
    "ids", [["answer", "ANSWER"], ["yes", "yes\u200b"], ["Café", "Cafe\u0301"]], ids=ascii
)
def test_ids_are_compared_exactly(ids: list[str]) -> None:
    parse_message(set_at(BUTTONS, buttons("Yes", "No", ids=ids)))


def test_duplicate_ids_and_titles_are_all_reported() -> None:
    found = problems(set_at(BUTTONS, buttons("Yes", "yes", "Yes", ids=["a", "a", "c"])))
    assert set(found) == {
        f"{BUTTONS}.1.reply.id",
        f"{BUTTONS}.1.reply.title",
        f"{BUTTONS}.2.reply.title",
    }


# --- header ---


def test_header_content_must_match_its_type() -> None:
    found = problems(set_at("interactive.header", {"type": "image", "text": "Sale"}))
    assert found == {
        "interactive.header.text": "must be left out when the header type is 'image'",
        "interactive.header.image": "is required when the header type is 'image'",
    }


@pytest.mark.parametrize("kind", ["text", "image", "video", "document"])
def test_header_needs_the_field_its_type_names(kind: str) -> None:
    found = problems(set_at("interactive.header", {"type": kind}))
    assert found == {f"interactive.header.{kind}": f"is required when the header type is '{kind}'"}


def test_header_type_must_be_a_known_one() -> None:
    found = problems(set_at("interactive.header", {"type": "audio", "audio": IMAGE_URL}))
    assert found["interactive.header.type"] == (
        "must be 'text', 'image', 'video' or 'document', got 'audio'"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"link": IMAGE_URL, "caption": "x"}, 'must be a URL string or {"link": url}'),
        ({"id": "1234"}, 'must be a URL string or {"link": url}'),
        ({"link": 5}, "must be a string, got number 5"),
        (5, "must be a string, got number 5"),
    ],
)
def test_media_objects_other_than_a_link_are_refused(content: Any, problem: str) -> None:
    found = problems(header("image", content))
    assert found["interactive.header.image"].startswith(problem)


GOOD_URLS = [
    "https://cdn.example.com/a.png",
    "http://example.com",
    "HTTPS://EXAMPLE.COM/a.pdf?version=2#page=1",
    "https://[2001:db8::1]:8443/v.mp4",
    "https://example.com:65535/a.png",
    "http://127.0.0.1:8080/a.png",
    "http://localhost:1/a.png",
    "http://10.1.2.3/a.png",
    "http://192.168.0.10/a.png",
    "http://[::1]/a.png",
    "http://0x7f000001/a.png",
    "https://169.254.example.com/a.png",
    "https://metadata.example.com/a.png",
]
BAD_URLS = [
    ("ftp://x", "must be an http(s) URL, got 'ftp://x'"),
    ("example.com/a.png", "must be an http(s) URL, got 'example.com/a.png'"),
    ("javascript:alert(1)", "must be an http(s) URL, got 'javascript:alert(1)'"),
    ("https://exa mple.com/a.png", "must be an http(s) URL, got 'https://exa mple.com/a.png'"),
    ("http://[::1", "must be an http(s) URL, got 'http://[::1'"),
    ("https://", "must be an http(s) URL with a host name, got 'https://'"),
    ("http:///a.png", "must be an http(s) URL with a host name, got 'http:///a.png'"),
    ("", "must be an http(s) URL, got ''"),
    ("not a url", "must be an http(s) URL, got 'not a url'"),
    (
        "ftp://files.example.com/a.pdf",
        "must be an http(s) URL, got 'ftp://files.example.com/a.pdf'",
    ),
    ("https:///a.pdf", "must be an http(s) URL with a host name, got 'https:///a.pdf'"),
    (
        "https://user:secret@example.com/a.png",
        "must not contain a user name or password (before an @)",
    ),
    ("https://token@example.com/a.png", "must not contain a user name or password (before an @)"),
    (
        "https://example.com:0/a.png",
        "must have a port from 1 to 65535, got 'https://example.com:0/a.png'",
    ),
    (
        "https://example.com:65536/a",
        "must have a port from 1 to 65535, got 'https://example.com:65536/a'",
    ),
    (
        "https://example.com:8o/a",
        "must have a port from 1 to 65535, got 'https://example.com:8o/a'",
    ),
    (
        "https://example.com:-1/a",
        "must have a port from 1 to 65535, got 'https://example.com:-1/a'",
    ),
    ("https://[::1]:+80/a", "must have a port from 1 to 65535, got 'https://[::1]:+80/a'"),
    ("https://example.com/a\x00.png", "must not contain control character U+0000"),
    ("https://example.com\x7f/", "must not contain control character U+007F"),
    ("https://example.com/\x85", "must not contain control character U+0085"),
]


@pytest.mark.parametrize("url", GOOD_URLS)
@pytest.mark.parametrize("field", ["image", "reportURL"])
def test_http_urls_with_a_host_are_accepted(field: str, url: str) -> None:
    data = header("image", url) if field == "image" else set_at("reportURL", url)
    wire = parse_message(data).to_wire()
    assert url in (wire.get("reportURL"), wire["interactive"].get("header", {}).get("image"))


@pytest.mark.parametrize(("url", "problem"), BAD_URLS, ids=[url for url, _ in BAD_URLS])
@pytest.mark.parametrize("field", ["interactive.header.image", "reportURL"])
def test_other_urls_are_refused(field: str, url: str, problem: str) -> None:
    data = header("image", url) if field != "reportURL" else set_at("reportURL", url)
    assert problems(data) == {field: problem}


METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.1.1/a.png",
    "http://[fe80::1]/a.png",
    "http://[fe80::1%25eth0]:8080/a.png",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.Google.Internal./computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    "http://100.100.100.200/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://%31%36%39.254.169.254/",
    "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14/",
    "http://169。254。169。254/",
]


@pytest.mark.parametrize("url", METADATA_URLS)
@pytest.mark.parametrize("field", ["interactive.header.image", "reportURL"])
def test_link_local_and_cloud_metadata_hosts_are_refused(field: str, url: str) -> None:
    data = header("image", url) if field != "reportURL" else set_at("reportURL", url)
    assert problems(data) == {
        field: f"must not point to a link-local or cloud metadata address, got {shown(url)}"
    }


def test_credentials_in_a_url_never_reach_the_error_text() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_message(header("video", "https://bot:s3cret-t0ken@cdn.example.com/v.mp4"))
    assert "s3cret" not in str(refused.value)


def test_report_url_takes_no_media_object() -> None:
    found = problems(set_at("reportURL", {"link": IMAGE_URL}))
    assert found["reportURL"].startswith("must be a string, got object")


def test_report_url_is_left_out_when_not_given() -> None:
    assert "reportURL" not in parse_message(wire_message()).to_wire()


# --- phone number ---

AFTER_PREFIX = "must start with the country code, after any + or 00"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("919876543210", "919876543210"),
        ("+91 98765-43210", "919876543210"),
        ("0091 98765 43210", "919876543210"),
        ("+1 (415) 555.0100", "14155550100"),
        ("+44 [20] 7946 0958", "442079460958"),
        ("(91) 98765.43210", "919876543210"),
        ("0091-98765-43210", "919876543210"),
        ("00919876543210", "919876543210"),
        ("\t+91 9876543210\n", "919876543210"),
        ("12345678", "12345678"),
        ("123456789012345", "123456789012345"),
        ("+123456789012345", "123456789012345"),
        ("+1 (555) 123-4567", "15551234567"),
        ("(+91) 98765 43210", "919876543210"),
        ("(0091) 98765 43210", "919876543210"),
        ("0091 9876543210", "919876543210"),
    ],
)
def test_phone_numbers_are_normalised_to_digits(given: str, stored: str) -> None:
    message = parse_message(wire_message(to=given))
    assert message.to == stored
    assert message.to_wire()["to"] == stored


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("1234567", "must have 8 to 15 digits (country code first), got 7 in '1234567'"),
        ("+1234567890123456", "must have 8 to 15 digits (country code first), got 16"),
        ("0987654321", "must start with the country code, not 0, got '0987654321'"),
        ("+0091 98765 43210", "must start with the country code, not 0"),
        ("00 0 98765 43210", "must start with the country code, not 0"),
        ("++919876543210", "must be a phone number in international format"),
        ("91 98765 4321O", "must be a phone number in international format"),
        ("phone number", "must be a phone number in international format, got 'phone number'"),
        ("+91 98765 43210 ext 5", "must be a phone number in international format"),
        ("1234567890123456", "must have 8 to 15 digits (country code first), got 16"),
        ("00 1234 567", "must have 8 to 15 digits (country code first), got 7"),
        ("९१९८७६५४३२१०", "must be a phone number in international format"),
        ("+91/98765/43210", "must be a phone number in international format"),
        ("", "must be a phone number in international format, got ''"),
        (919876543210, "must be a string, got number 919876543210"),
        (None, "must be a string, got null"),
        ("+-919876543210", f"{AFTER_PREFIX}, got '+-919876543210'"),
        ("+ 91 98765 43210", AFTER_PREFIX),
        ("-919876543210", AFTER_PREFIX),
        (".91 98765 43210", AFTER_PREFIX),
        ("00-919876543210", AFTER_PREFIX),
        ("00 91 98765 43210", AFTER_PREFIX),
        ("+(91) 98765 43210", AFTER_PREFIX),
        (")91( 98765 43210", AFTER_PREFIX),
    ],
)
def test_bad_phone_numbers_are_refused(given: Any, problem: str) -> None:
    found = problems(wire_message(to=given))
    assert list(found) == ["to"]
    assert found["to"].startswith(problem)


# --- phone id ---


@pytest.mark.parametrize("phone_id", ["106540352242922", "a_B-9", "9" * 64, "-"])
def test_phone_ids_of_letters_digits_underscores_and_dashes_are_kept(phone_id: str) -> None:
    assert parse_message(wire_message(phoneId=phone_id)).to_wire()["phoneId"] == phone_id


@pytest.mark.parametrize(
    "phone_id", ["123:deferred", "12 34", "phone/1", "١٢٣", "id\x00", "*", "{value}", "1234\n"]
)
def test_other_phone_ids_are_refused(phone_id: str) -> None:
    assert problems(wire_message(phoneId=phone_id)) == {
        "phoneId": f"must contain only ASCII letters, digits, _ and -, got {shown(phone_id)}"
    }


# --- unknown fields and strict booleans ---


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("phoneID", "unknown field; did you mean 'phoneId'?"),
        ("linkwithrecord", "unknown field; did you mean 'linkWithRecord'?"),
        ("priority", "unknown field; expected one of to, phoneId, type, interactive, source, "
         "linkWithRecord, submissionStatus, reportURL"),
        ("interactive.footr", "unknown field; did you mean 'footer'?"),
        ("interactive.body.txt", "unknown field; did you mean 'text'?"),
        ("interactive.footer.txt", "unknown field; did you mean 'text'?"),
        ("interactive.header.txt", "unknown field; did you mean 'text'?"),
        ("interactive.header.caption", "unknown field; expected one of type, text, image, "
         "video, document"),
        ("interactive.action.button", "unknown field; did you mean 'buttons'?"),
        (f"{BUTTONS}.0.reply.payload", "unknown field; expected one of id, title"),
        (f"{BUTTONS}.0.reply.titel", "unknown field; did you mean 'title'?"),
        (f"{BUTTONS}.0.payload", "unknown field; expected one of type, reply"),
        ("interactive.action.sections", "unknown field; expected one of buttons"),
    ],
)  # fmt: skip
def test_unknown_fields_are_refused_by_name(path: str, problem: str) -> None:
    assert problems(set_at(path, "x"))[path] == problem


def test_unknown_header_field_is_refused() -> None:
    found = problems(set_at("interactive.header", {"type": "image", "url": IMAGE_URL}))
    assert found["interactive.header.url"] == (
        "unknown field; expected one of type, text, image, video, document"
    )


@pytest.mark.parametrize("field", ["linkWithRecord", "submissionStatus"])
@pytest.mark.parametrize(
    ("value", "got"),
    [("yes", "string 'yes'"), ("true", "string 'true'"), (1, "number 1"), (0, "number 0"),
     (None, "null")],
)  # fmt: skip
def test_booleans_must_be_json_true_or_false(field: str, value: Any, got: str) -> None:
    assert problems(set_at(field, value)) == {field: f"must be true or false, got {got}"}


@pytest.mark.parametrize("field", ["linkWithRecord", "submissionStatus"])
@pytest.mark.parametrize("value", [True, False])
def test_booleans_true_and_false_are_kept(field: str, value: bool) -> None:
    assert parse_message(set_at(field, value)).to_wire()[field] is value


# --- the error itself ---


def test_error_is_ours_and_names_path_and_limit() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_message(set_at(TITLE0, "A title far too long!!"))
    error = refused.value
    assert isinstance(error, ValueError)
    assert not isinstance(error, pydantic.ValidationError)
    assert error.__cause__ is None and error.__suppress_context__
    assert f"{TITLE0}: must be at most 20 {CLUSTERS}, got 22" in str(error)


@pytest.mark.parametrize(
    ("path", "value", "where", "limit"),
    [
        (TITLE0, "t" * 21, TITLE0, "20"),
        (ID0, "i" * 257, ID0, "256"),
        ("interactive.body.text", "b" * 1025, "interactive.body.text", "1024"),
        ("interactive.footer", {"text": "f" * 61}, "interactive.footer.text", "60"),
        ("interactive.header", {"type": "text", "text": "h" * 61}, "interactive.header.text",
         "60"),
        (BUTTONS, buttons("1", "2", "3", "4"), f"{BUTTONS}.3", "3"),
        ("to", "1" * 16, "to", "15"),
        ("to", "1" * 7, "to", "8"),
    ],
    ids=lambda value: str(value)[:30],
)  # fmt: skip
def test_error_text_names_the_dotted_path_and_the_limit(
    path: str, value: Any, where: str, limit: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_message(set_at(path, value))
    (line,) = [line for line in str(refused.value).splitlines() if line.startswith("  - ")]
    assert line.startswith(f"  - {where}: ")
    assert re.search(rf"\b{limit}\b", line.removeprefix(f"  - {where}: "))


def test_a_problem_with_the_whole_message_is_shown_as_such() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_message("not an object")  # type: ignore[arg-type]
    assert str(refused.value).splitlines()[1].startswith("  - (message): must be an object")


def test_every_problem_of_a_message_is_reported_at_once() -> None:
    data = with_values(to="12", phoneId="", interactive__body={"text": ""})
    data["interactive"]["action"]["buttons"][1]["reply"]["title"] = "x" * 30
    assert set(problems(data)) == {
        "to",
        "phoneId",
        "interactive.body.text",
        f"{BUTTONS}.1.reply.title",
    }


@pytest.mark.parametrize(
    ("path", "value"),
    [("to", "1" * 5000), ("type", "x" * 5000), ("linkWithRecord", "y" * 5000),
     ("reportURL", "ftp://" + "z" * 5000), (TITLE0, "w" * 5000)],
)  # fmt: skip
def test_huge_values_are_cut_short_in_error_text(path: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_message(set_at(path, value))
    assert path in str(refused.value)
    assert len(str(refused.value)) < 250


DEEP = 100_000
WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "dict": lambda inner: {"a": inner},
    "list": lambda inner: [inner],
    "OrderedDict": lambda inner: OrderedDict(a=inner),
}


@functools.cache
def nested(kind: str) -> Any:
    """A value DEEP levels deep, built without recursion, and only once: that takes a while."""
    node: Any = "leaf"
    for _ in range(DEEP):
        node = WRAPPERS[kind](node)
    return node


@pytest.mark.parametrize("kind", WRAPPERS)
@pytest.mark.parametrize(
    "path",
    ["to", "phoneId", "interactive.body.text", "interactive.body", BUTTONS,
     f"{BUTTONS}.0.reply.id", "reportURL", "extra"],
)  # fmt: skip
def test_deeply_nested_input_is_refused_as_invalid(path: str, kind: str) -> None:
    found = problems(set_at(path, nested(kind)))
    assert found and all(where.startswith(path) for where in found)
    assert all(len(problem) < 150 for problem in found.values())


@pytest.mark.parametrize("kind", WRAPPERS)
def test_a_deeply_nested_message_is_refused_as_invalid(kind: str) -> None:
    assert problems(nested(kind))


def test_a_huge_number_is_refused_as_invalid() -> None:
    assert problems(set_at("to", 10**5000)) == {"to": "must be a string, got number <huge number>"}


def test_a_nested_value_is_shown_a_few_levels_deep() -> None:
    assert problems(set_at("interactive.body.text", nested("dict"))) == {
        "interactive.body.text": "must be a string, got object {'a': {'a': {'a': {...}}}}"
    }


# --- batches ---


def test_a_batch_is_validated_whole_and_keeps_its_order() -> None:
    built = parse_message(wire_message(to="14155550100"))
    parsed = parse_messages([wire_message(), built, wire_message(to="+44 20 7946 0958")])
    assert [message.to for message in parsed] == ["919876543210", "14155550100", "442079460958"]
    assert parsed[1] is built


def test_a_bad_batch_names_every_bad_item_by_index() -> None:
    items: list[Mapping[str, Any] | ReplyButtonMessage] = [
        wire_message(),
        wire_message(to="12"),
        wire_message(),
        set_at(TITLE0, "t" * 21),
        wire_message(phoneId="", linkWithRecord="no"),
    ]
    with pytest.raises(ValidationError) as refused:
        parse_messages(items)
    found = {(problem.item, problem.path) for problem in refused.value.problems}
    assert found == {(1, "to"), (3, TITLE0), (4, "phoneId"), (4, "linkWithRecord")}
    text = str(refused.value)
    assert "item 1: to: must have 8 to 15 digits" in text
    assert f"item 3: {TITLE0}: must be at most 20 {CLUSTERS}, got 21" in text


def test_an_empty_batch_is_an_empty_list() -> None:
    assert parse_messages([]) == []


# --- the builder ---


def wire_buttons(message: ReplyButtonMessage) -> list[tuple[str, str]]:
    return [(button.reply.id, button.reply.title) for button in message.interactive.action.buttons]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["Yes", "No"], [("Yes", "Yes"), ("No", "No")]),
        ([("y", "Yes"), ("n", "No")], [("y", "Yes"), ("n", "No")]),
        (["Yes", ("later", "Ask me later")], [("Yes", "Yes"), ("later", "Ask me later")]),
        ({"y": "Yes", "n": "No", "m": "Maybe"}, [("y", "Yes"), ("n", "No"), ("m", "Maybe")]),
        ("Okay", [("Okay", "Okay")]),
    ],
    ids=["titles", "pairs", "mixed", "mapping", "one-title"],
)
def test_builder_button_forms(given: Any, expected: list[tuple[str, str]]) -> None:
    message = reply_buttons(to="919876543210", phone_id="1234", body="Hi", buttons=given)
    assert wire_buttons(message) == expected


def test_builder_gives_the_same_message_as_the_wire_dict() -> None:
    built = reply_buttons(
        to="+91 98765-43210",
        phone_id="1234567890",
        body="Confirm your order #42?",
        buttons=[("yes", "Yes"), ("no", "No")],
        header="Order #42",
        footer="Thanks!",
        submission_status=True,
        link_with_record=True,
        source="crm",
    )
    data = with_values(
        interactive__header={"type": "text", "text": "Order #42"},
        interactive__footer={"text": "Thanks!"},
        submissionStatus=True,
        linkWithRecord=True,
        source="crm",
    )
    assert built == parse_message(data)
    assert built.to_wire() == parse_message(data).to_wire()


@pytest.mark.parametrize("kind", ["image", "video", "document"])
def test_builder_media_headers(kind: str) -> None:
    media: dict[str, Any] = {f"header_{kind}": IMAGE_URL}
    message = reply_buttons(to="919876543210", phone_id="1", body="Hi", buttons=["Ok"], **media)
    assert message.to_wire()["interactive"]["header"] == {"type": kind, kind: IMAGE_URL}


def test_builder_defaults_match_the_wire_defaults() -> None:
    wire = reply_buttons(to="919876543210", phone_id="1", body="Hi", buttons=["Ok"]).to_wire()
    assert (wire["source"], wire["linkWithRecord"], wire["submissionStatus"]) == (
        "API",
        False,
        False,
    )
    assert "header" not in wire["interactive"] and "footer" not in wire["interactive"]


@pytest.mark.parametrize(
    ("changes", "where", "problem"),
    [
        ({"buttons": ["x" * 21]}, TITLE0, f"must be at most 20 {CLUSTERS}, got 21"),
        ({"buttons": []}, BUTTONS, "must have at least 1 item(s), got 0"),
        ({"buttons": ["A", "B", "C", "D"]}, f"{BUTTONS}.3", "is one too many"),
        ({"buttons": ["Yes", "yes"]}, f"{BUTTONS}.1.reply.title", "must be unique"),
        ({"buttons": [("a", "b", "c")]}, f"{BUTTONS}.0", "must be an object, got list"),
        ({"header": "Hi", "header_video": IMAGE_URL}, "interactive.header.video",
         "must be left out when the header type is 'text'"),
        ({"header_image": "ftp://x"}, "interactive.header.image", "must be an http(s) URL"),
        ({"to": "12"}, "to", "must have 8 to 15 digits"),
        ({"phone_id": ""}, "phoneId", "must not be empty"),
        ({"footer": ""}, "interactive.footer.text", "must not be empty"),
        ({"submission_status": "yes"}, "submissionStatus", "must be true or false"),
    ],
    ids=lambda value: str(value)[:30],
)  # fmt: skip
def test_builder_errors_use_wire_paths(changes: dict[str, Any], where: str, problem: str) -> None:
    arguments: dict[str, Any] = {"to": "919876543210", "phone_id": "1", "body": "Hi",
                                 "buttons": ["Ok"], **changes}  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        reply_buttons(**arguments)
    found = {problem.path: problem.problem for problem in refused.value.problems}
    assert where in found
    assert found[where].startswith(problem)


# --- the single-value rules on their own ---


@pytest.mark.parametrize(
    ("annotation", "given", "kept"),
    [
        (PhoneNumber, "+91 98765-43210", "919876543210"),
        (PhoneNumber, "(91) 98765.43210", "919876543210"),
        (HttpUrl, "https://example.com/x", "https://example.com/x"),
        (MediaUrl, "https://example.com/x.png", "https://example.com/x.png"),
        (MediaUrl, {"link": "https://example.com/x.png"}, "https://example.com/x.png"),
    ],
)
def test_value_types_normalise(annotation: Any, given: Any, kept: str) -> None:
    assert pydantic.TypeAdapter(annotation).validate_python(given) == kept


@pytest.mark.parametrize(
    ("annotation", "given"),
    [(PhoneNumber, "0091 0"), (PhoneNumber, 919876543210), (HttpUrl, "not a url"),
     (HttpUrl, "ftp://x"), (MediaUrl, {"url": "https://example.com"}), (MediaUrl, None)],
)  # fmt: skip
def test_value_types_refuse(annotation: Any, given: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        pydantic.TypeAdapter(annotation).validate_python(given)


@pytest.mark.parametrize(
    ("value", "text"),
    [("short", "'short'"), ("x" * 100, "'" + "x" * 37 + "…'"), (5, "5"), (None, "None")],
)
def test_shown_cuts_long_values_to_the_limit(value: Any, text: str) -> None:
    assert shown(value) == text
    assert len(shown(value)) <= 40


def test_located_problems_read_as_one_text() -> None:
    located = Located([("buttons.1.reply.id", "must be unique"), ("buttons.3", "one too many")])
    assert str(located) == "buttons.1.reply.id: must be unique; buttons.3: one too many"
    assert isinstance(located, ValueError)


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (FieldProblem("to", "is required"), "to: is required"),
        (FieldProblem("", "must be an object"), "(message): must be an object"),
        (FieldProblem("phoneId", "is required", item=3), "item 3: phoneId: is required"),
    ],
)
def test_field_problem_text(problem: FieldProblem, text: str) -> None:
    assert str(problem) == text


def test_error_counts_its_problems() -> None:
    one = ValidationError([FieldProblem("to", "is required")])
    two = ValidationError([FieldProblem("to", "is required"), FieldProblem("phoneId", "x")])
    assert str(one).startswith("invalid message, 1 problem:\n")
    assert str(two).startswith("invalid message, 2 problems:\n")
