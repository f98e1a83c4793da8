"""Reading messages from files: one JSON message, or many as JSON Lines or CSV with simple columns.

A file named `-` is standard input. Text is UTF-8, with or without a byte order mark (Excel's
"CSV UTF-8" writes one).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from producer.errors import FieldProblem, ValidationError
from producer.message import ReplyButtonMessage, parse_message, reply_buttons
from zixflow_queue.cli.output import UsageError

STDIN = "-"
FORMATS = ("jsonl", "csv")
BUTTON_COLUMNS = ("button1", "button2", "button3")
CSV_COLUMNS = ("to", "phone_id", "body", *BUTTON_COLUMNS, "header", "footer")
"""CSV columns; a button cell is TITLE or ID=TITLE, and empty cells are left out."""
REQUIRED_COLUMNS = CSV_COLUMNS[:4]
EXTRA_BUTTON = re.compile(r"button[0-9]+")
"""A button column beyond the last (the known ones are checked first)."""
ALSO_BUTTON = re.compile(r"is also button ([0-9]+)")
"""How a uniqueness problem names the earlier button, by its index among the buttons."""
ANY_BUTTON = f"{BUTTON_COLUMNS[0]}-{BUTTON_COLUMNS[-1]}"
"""Where a problem with the buttons as a whole (none at all) is located."""
WIRE_COLUMNS = {"to": "to", "phoneId": "phone_id", "interactive.body": "body",
                "interactive.header": "header", "interactive.footer": "footer"}  # fmt: skip
"""The CSV column each part of a wire message is built from (buttons aside)."""
DOCUMENT_HINT = (
    "this looks like a JSON document; bulk expects JSON Lines: one message per line "
    "(or a .csv file)"
)

Good = list[tuple[int, ReplyButtonMessage]]
Bad = list[tuple[int, str]]
"""Problems by line number, each told in full: `line 3, column button1: ...`."""
Parsed = list[tuple[int, ReplyButtonMessage | list[str]]]


class NotJSON(ValueError):
    """Text that is not JSON Python can read; the message says why."""


def display_name(name: str) -> str:
    """How a file is named in messages."""
    return "standard input" if name == STDIN else name


def read_text(name: str) -> str:
    """A file (or standard input) as text; a UsageError naming it when unreadable or not UTF-8."""
    try:
        data = sys.stdin.buffer.read() if name == STDIN else Path(name).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {display_name(name)}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(_not_utf8(name, data, error)) from None


def _not_utf8(name: str, data: bytes, error: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 is, counted in the file as it is on disk."""
    offset = error.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
    line = data.count(b"\n", 0, offset) + 1
    return (
        f"{display_name(name)} is not UTF-8 text: byte 0x{data[offset]:02x} at byte offset "
        f"{offset} (line {line}) cannot be decoded; save it as UTF-8 (Excel: CSV UTF-8)"
    )


def parse_json(text: str) -> Any:
    """JSON text as Python values; NotJSON says what is wrong (never a RecursionError)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise NotJSON(f"not valid JSON: {error}") from None
    except RecursionError:
        raise NotJSON("JSON nested too deeply to read") from None


def read_message(name: str) -> ReplyButtonMessage:
    """One message in the wire shape from a JSON file; raises UsageError or ValidationError."""
    try:
        return parse_message(parse_json(read_text(name)))
    except NotJSON as error:
        raise UsageError(f"{display_name(name)}: {error}") from None


def read_messages(name: str, file_format: str) -> tuple[Good, Bad]:
    """Validate every message of a JSON Lines or CSV file: the valid ones and the problems."""
    text = read_text(name)
    parsed = _csv_messages(name, text) if file_format == "csv" else _json_messages(name, text)
    if not parsed:
        raise UsageError(f"no messages in {display_name(name)}")
    good = [(line, item) for line, item in parsed if isinstance(item, ReplyButtonMessage)]
    bad = [(line, problem) for line, item in parsed if isinstance(item, list) for problem in item]
    return good, bad


def _json_messages(name: str, text: str) -> Parsed:
    """Each non-blank line's message, or its problems; a UsageError for a JSON document."""
    if _json_document(text):
        raise UsageError(f"{display_name(name)}: {DOCUMENT_HINT}")
    lines = enumerate(text.split("\n"), start=1)  # not splitlines: JSON may hold U+2028 as is
    return [(number, _json_message(number, line)) for number, line in lines if line.strip()]


def _json_document(text: str) -> bool:
    """Whether the text is one JSON document (an array, or an object over many lines)."""
    stripped = text.strip()
    if stripped.partition("\n")[0].strip() in ("{", "["):
        return True
    try:
        value = parse_json(stripped)
    except NotJSON:
        return False
    return isinstance(value, list) or (isinstance(value, dict) and "\n" in stripped)


def _json_message(number: int, line: str) -> ReplyButtonMessage | list[str]:
    """One line's message, or its problems."""
    try:
        return parse_message(parse_json(line))
    except NotJSON as error:
        return [f"line {number}: {error}"]
    except ValidationError as error:
        return [f"line {number}: {problem}" for problem in error.problems]


def _csv_messages(name: str, text: str) -> Parsed:
    """Each non-blank row's message, or its problems; a UsageError for a bad header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        columns = _columns(name, header)
        return [
            (number, _csv_message(number, columns, cells))
            for number, cells in _numbered(reader)
            if any(cell.strip() for cell in cells)
        ]
    except csv.Error as error:
        raise UsageError(f"{display_name(name)}, line {reader.line_num}: {error}") from None


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Each row with the line it starts on (a quoted cell may span lines)."""
    start = reader.line_num + 1
    for cells in reader:
        yield start, cells
        start = reader.line_num + 1


def _columns(name: str, header: list[str]) -> list[str]:
    """The header's column names; a UsageError naming each unknown, missing or repeated one."""
    columns = [cell.strip().lower() for cell in header]
    problems = _column_problems(columns)
    if problems:
        known = f"the columns are {', '.join(CSV_COLUMNS)}; the first four are required"
        raise UsageError(f"{display_name(name)}: {'; '.join(problems)} ({known})")
    return columns


def _column_problems(columns: list[str]) -> list[str]:
    """What is wrong with a header's columns: unknown, missing or repeated ones."""
    problems = []
    unknown = [column for column in columns if column not in CSV_COLUMNS]
    if unknown:
        unused = [column for column in CSV_COLUMNS if column not in columns]
        problems.append("unknown column(s) " + ", ".join(_guess(c, unused) for c in unknown))
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    repeated = sorted({column for column in columns if column and columns.count(column) > 1})
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    return problems


def _guess(column: str, unused: list[str]) -> str:
    """An unknown column's name, with the known column it is probably meant to be."""
    if EXTRA_BUTTON.fullmatch(column):
        return f"{column} (a message has at most {len(BUTTON_COLUMNS)} buttons)"
    close = difflib.get_close_matches(column, unused, n=1)
    shown = column or "(a column with no name)"
    return f"{shown} (did you mean {close[0]}?)" if close else shown


def _csv_message(
    number: int, columns: list[str], cells: list[str]
) -> ReplyButtonMessage | list[str]:
    """One row's message, or its problems, each named by line and column."""
    if len(cells) > len(columns):  # often an unquoted comma: every cell after it shifted
        return [f"line {number}: {len(cells)} cells, but the header names {len(columns)} columns "
                "(put a cell that has a comma in it in double quotes)"]  # fmt: skip
    row = {column: cell.strip() for column, cell in zip(columns, cells, strict=False)}
    buttons = [column for column in BUTTON_COLUMNS if row.get(column)]
    try:
        return reply_buttons(
            to=row.get("to", ""), phone_id=row.get("phone_id", ""), body=row.get("body", ""),
            buttons=[button_spec(row[column]) for column in buttons],
            header=row.get("header") or None, footer=row.get("footer") or None,
        )  # fmt: skip
    except ValidationError as error:
        told = (_csv_problem(problem, row, buttons) for problem in error.problems)
        return [f"line {number}, {text}" for text in told if text]


def _csv_problem(problem: FieldProblem, row: dict[str, str], buttons: list[str]) -> str | None:
    """A problem told by CSV column; None for a button id's when its title's tells the same."""
    column = csv_column(problem.path, buttons)
    text = ALSO_BUTTON.sub(lambda match: f"is also in {buttons[int(match[1])]}", problem.problem)
    if problem.path.endswith(".reply.id"):
        if "=" not in row.get(column, "="):  # a TITLE cell: the id is the title
            return None
        text = f"its id {text}"
    return f"column {column}: {text}"


def csv_column(path: str, buttons: list[str]) -> str:
    """The CSV column a wire path of a message built from a row comes from.

    `buttons` are the row's non-empty button columns, in the order they became buttons.
    """
    parts = path.split(".")
    if parts[:3] == ["interactive", "action", "buttons"]:
        index = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else len(buttons)
        return buttons[index] if index < len(buttons) else ANY_BUTTON
    for prefix, column in WIRE_COLUMNS.items():
        if path == prefix or path.startswith(prefix + "."):
            return column
    return path


def button_spec(text: str) -> str | tuple[str, str]:
    """TITLE, or ID=TITLE (spaces around either part are left out)."""
    button_id, sep, title = text.partition("=")
    return (button_id.strip(), title.strip()) if sep else text.strip()
