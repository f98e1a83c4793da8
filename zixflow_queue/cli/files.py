"""Reading many messages from a file: JSON Lines in the wire shape, or CSV with simple columns."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from producer.errors import ValidationError
from producer.message import ReplyButtonMessage, parse_message, reply_buttons

CSV_COLUMNS = ("to", "phone_id", "body", "button1", "button2", "button3", "header", "footer")
"""CSV columns; a button cell is TITLE or ID=TITLE, and empty cells are left out."""

Good = list[tuple[int, ReplyButtonMessage]]
Bad = list[tuple[int, str]]


def read_messages(path: Path) -> tuple[Good, Bad]:
    """Validate every line; returns the valid messages and the errors, both by line number."""
    parse: Callable[[Any], ReplyButtonMessage]
    if path.suffix.lower() == ".csv":
        rows, parse = _csv_rows(path), _csv_message
    else:
        rows, parse = _json_lines(path), _json_message
    good: Good = []
    bad: Bad = []
    for line, row in rows:
        try:
            good.append((line, parse(row)))
        except ValidationError as error:
            bad.append((line, "; ".join(str(problem) for problem in error.problems)))
        except json.JSONDecodeError as error:
            bad.append((line, f"not valid JSON: {error}"))
    return good, bad


def _json_lines(path: Path) -> list[tuple[int, Any]]:
    lines = enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
    return [(number, text) for number, text in lines if text.strip()]


def _json_message(text: str) -> ReplyButtonMessage:
    return parse_message(json.loads(text))


def _csv_rows(path: Path) -> list[tuple[int, Any]]:
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        return [(reader.line_num, row) for row in reader]


def _csv_message(row: dict[str | None, str | None]) -> ReplyButtonMessage:
    cells = {key: (value or "").strip() for key, value in row.items() if key}
    buttons = [cells.get(f"button{n}", "") for n in (1, 2, 3)]
    return reply_buttons(
        to=cells.get("to", ""),
        phone_id=cells.get("phone_id", ""),
        body=cells.get("body", ""),
        buttons=[button_spec(text) for text in buttons if text],
        header=cells.get("header") or None,
        footer=cells.get("footer") or None,
    )


def button_spec(text: str) -> str | tuple[str, str]:
    """TITLE, or ID=TITLE."""
    button_id, sep, title = text.partition("=")
    return (button_id, title) if sep else text
