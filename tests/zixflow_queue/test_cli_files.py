"""`bulk` and `send --file` reading files: JSON Lines, CSV, standard input, and bad files."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from producer.enqueue import Producer
from tests.support import wire_message
from tests.zixflow_queue.conftest import CliResult

pytestmark = pytest.mark.usefixtures("cli_environment")

Run = Callable[..., CliResult]
Stdin = Callable[[bytes], None]
HEADER = "to,phone_id,body,button1,button2,button3,header,footer"
ROW = "919876543210,1234,Deliver?,yes=Yes,No,,Order #7,Reply to choose"
DEEP = "[" * 100_000 + "]" * 100_000


def write_lines(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows))
    return path


def enqueued(producer: Producer, out: str) -> list[str]:
    """The states of the jobs a `bulk` printed (`line<TAB>job id` rows)."""
    statuses = producer.get_statuses([row.split("\t")[1] for row in out.splitlines()])
    return [status.state if status else "missing" for status in statuses]


def test_bulk_with_a_bad_line_enqueues_nothing(
    run: Run, tmp_path: Path, producer: Producer
) -> None:
    path = write_lines(
        tmp_path / "messages.jsonl",
        [wire_message(), wire_message(to="12"), "{oops", wire_message(to="919800000003")],
    )
    code, out, err = run("bulk", str(path))
    assert code == 2 and out == ""
    assert "line 2: to:" in err and "line 3: not valid JSON" in err
    assert "nothing enqueued" in err
    assert producer.store.records.dbsize() == 0

    code, out, err = run("bulk", str(path), "--skip-invalid")
    rows = [row.split("\t") for row in out.splitlines()]
    assert code == 0 and [line for line, _ in rows] == ["1", "4"]
    assert all(producer.get_status(job_id) is not None for _, job_id in rows)
    assert "skipped 2 invalid" in err


def test_bulk_dry_run_prints_every_line_and_enqueues_nothing(
    run: Run, tmp_path: Path, producer: Producer
) -> None:
    path = write_lines(tmp_path / "messages.jsonl", [wire_message(), wire_message()])
    code, out, _ = run("bulk", str(path), "--dry-run")
    rows = [json.loads(row) for row in out.splitlines()]
    assert code == 0 and [row["line"] for row in rows] == [1, 2]
    assert rows[0]["message"]["submissionStatus"] is False
    assert producer.store.records.dbsize() == 0


def test_bulk_reads_csv(run: Run, tmp_path: Path, producer: Producer) -> None:
    path = tmp_path / "messages.csv"
    path.write_text(
        "to,phone_id,body,button1,button2,footer\n"
        "919876543210,1234,Hi?,yes=Yes,No,\n"
        "919876543211,1234,Hi?,,,too many buttons? none at all\n"
    )
    code, out, err = run("bulk", str(path), "--json", "--skip-invalid")
    assert code == 0 and json.loads(out)["line"] == 2
    assert "line 3, column button1-button3: must have at least 1 item" in err


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_bulk_reads_a_csv_saved_with_a_byte_order_mark(
    run: Run, tmp_path: Path, producer: Producer, newline: str
) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF8 + newline.join([HEADER, ROW, ""]).encode())
    code, out, err = run("bulk", str(path))
    assert (code, enqueued(producer, out)) == (0, ["queued"]), err


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["plain", "bom"])
@pytest.mark.parametrize("command", ["bulk", "send --file"])
def test_a_file_that_is_not_utf8_is_named_with_its_byte_offset(
    run: Run, tmp_path: Path, bom: bytes, command: str
) -> None:
    path = tmp_path / "latin1.csv"
    text = f"{HEADER}\n919876543210,1234,Livraison demain ?,Oui,Non,,,\n"
    data = bom + text.replace("demain", "prévue").encode("latin-1")
    path.write_bytes(data)
    code, out, err = run(*command.split(), str(path))
    offset = data.index(b"\xe9")
    assert (code, out) == (2, "")
    assert err == (
        f"error: {path} is not UTF-8 text: byte 0xe9 at byte offset {offset} (line 2) cannot be "
        "decoded; save it as UTF-8 (Excel: CSV UTF-8)\n"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("to,phone,body,button1,button4", ["unknown column(s) phone (did you mean phone_id?), "
         "button4 (a message has at most 3 buttons)", "missing column(s) phone_id"]),
        ("to,phone_id,Body,buton1", ["unknown column(s) buton1 (did you mean button1?)",
                                     "missing column(s) button1"]),
        ("to,phone_id,body,button1,body", ["repeated column(s) body"]),
        ("to,phone_id,button1,", ["unknown column(s) (a column with no name)",
                                  "missing column(s) body"]),
    ],
)  # fmt: skip
def test_csv_columns_unknown_missing_or_repeated_are_named(
    run: Run, tmp_path: Path, header: str, expected: list[str]
) -> None:
    path = tmp_path / "messages.csv"
    path.write_text(f"{header}\n919876543210,1234,Hi,Yes,No\n")
    code, out, err = run("bulk", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1
    assert all(text in err for text in expected), err
    assert "(the columns are to, phone_id, body, button1, button2, button3, header, footer;" in err


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ("12,1234,Hi,Yes,,,,", "column to: must have 8 to 15 digits"),
        ("919876543210,,Hi,Yes,,,,", "column phone_id: "),
        ("919876543210,1234,,Yes,,,,", "column body: must not be empty"),
        ("919876543210,1234,Hi,Yes,No,Way too long a title!!,,", "column button3: must be at "
         "most 20 characters"),
        ("919876543210,1234,Hi,,Way too long a title!!,,,", "column button2: must be at most 20"),
        ("919876543210,1234,Hi,=Yes,,,,", "column button1: its id must not be empty"),
        ("919876543210,1234,Hi,Yes,yes,,,", "column button2: must be unique within the message; "
         "'yes' is also in button1"),
        ("919876543210,1234,Hi,Yes,,," + "h" * 61 + ",", "column header: must be at most 60"),
        ("919876543210,1234,Hi,Yes,,,," + "f" * 61, "column footer: must be at most 60"),
        ("919876543210,1234,Hi, there,Yes,,,,", "9 cells, but the header names 8 columns (put a "
         "cell that has a comma in it in double quotes)"),
    ],
)  # fmt: skip
def test_csv_problems_name_the_line_and_the_column(
    run: Run, tmp_path: Path, cells: str, expected: str
) -> None:
    path = tmp_path / "messages.csv"
    path.write_text(f"{HEADER}\n{ROW}\n{cells}\n")
    code, _, err = run("bulk", str(path))
    problems = err.splitlines()[:-1]
    assert code == 2 and len(problems) == 1, err
    assert problems[0].startswith("line 3") and expected in problems[0]
    assert "interactive." not in err and "phoneId" not in err


def test_a_quoted_cell_over_two_lines_is_named_by_its_first_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "messages.csv"
    path.write_text(f'{HEADER}\n{ROW}\n12,1234,"Two\nlines",Yes,,,,\n{ROW}\n')
    code, _, err = run("bulk", str(path))
    assert code == 2 and err.startswith("line 3, column to: ")


@pytest.mark.parametrize(
    ("argv", "data"),
    [(["bulk", "-"], "\n".join(json.dumps(wire_message()) for _ in range(2)).encode()),
     (["bulk", "-", "--format", "csv"], f"{HEADER}\n{ROW}\n{ROW}\n".encode()),
     (["bulk", "-", "--format", "csv"], codecs.BOM_UTF8 + f"{HEADER}\n{ROW}\n{ROW}".encode())],
)  # fmt: skip
def test_bulk_reads_standard_input(
    run: Run, stdin: Stdin, producer: Producer, argv: list[str], data: bytes
) -> None:
    stdin(data)
    code, out, err = run(*argv)
    assert (code, enqueued(producer, out)) == (0, ["queued", "queued"]), err


def test_bulk_format_overrides_the_file_name(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "messages.txt"
    path.write_text(f"{HEADER}\n{ROW}\n")
    assert run("bulk", str(path), "--format", "csv", "--dry-run")[0] == 0
    code, _, err = run("bulk", str(path), "--dry-run")
    assert code == 2 and "line 1: not valid JSON" in err


@pytest.mark.parametrize(
    "text",
    [json.dumps(wire_message(), indent=2), json.dumps([wire_message(), wire_message()]),
     json.dumps([wire_message()], indent=2), "{\n  broken", "[\n"],
    ids=["pretty object", "array", "pretty array", "broken pretty object", "broken array"],
)  # fmt: skip
def test_a_json_document_gets_a_hint(
    run: Run, tmp_path: Path, producer: Producer, text: str
) -> None:
    path = tmp_path / "messages.json"
    path.write_text(text)
    code, out, err = run("bulk", str(path))
    assert (code, out) == (2, "")
    assert err == (
        f"error: {path}: this looks like a JSON document; bulk expects JSON Lines: one message "
        "per line (or a .csv file)\n"
    )
    assert producer.store.records.dbsize() == 0


@pytest.mark.parametrize(
    ("name", "text"),
    [("empty.jsonl", ""), ("blank.jsonl", "\n  \n\n"), ("empty.csv", ""),
     ("header.csv", f"{HEADER}\n"), ("blank.csv", f"{HEADER}\n,,,,,,,\n\n")],
)  # fmt: skip
def test_a_file_without_messages_is_refused(
    run: Run, tmp_path: Path, producer: Producer, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert run("bulk", str(path)) == (2, "", f"error: no messages in {path}\n")
    assert producer.store.records.dbsize() == 0


def test_empty_standard_input_is_refused(run: Run, stdin: Stdin) -> None:
    stdin(b"")
    assert run("bulk", "-") == (2, "", "error: no messages in standard input\n")


def test_a_file_of_only_invalid_lines_enqueues_nothing_even_when_skipping(
    run: Run, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "messages.jsonl", [wire_message(to="12")])
    code, out, err = run("bulk", str(path), "--skip-invalid")
    assert (code, out) == (2, "")
    assert err.endswith(f"error: no valid messages in {path}\n")


def test_deeply_nested_json_is_a_problem_of_its_line(run: Run, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "messages.jsonl", [wire_message(), DEEP])
    code, out, err = run("bulk", str(path))
    assert (code, out) == (2, "")
    assert "line 2: JSON nested too deeply to read" in err and "Traceback" not in err
    code, out, err = run("bulk", str(path), "--skip-invalid")
    assert code == 0 and out.startswith("1\t")


def test_send_refuses_deeply_nested_json(run: Run, stdin: Stdin) -> None:
    stdin(DEEP.encode())
    code, out, err = run("send", "--file", "-")
    assert (code, out, err) == (2, "", "error: standard input: JSON nested too deeply to read\n")
