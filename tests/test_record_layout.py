"""Every hash field a Lua script reads or writes is declared once in Python."""

from __future__ import annotations

import re
from enum import StrEnum
from importlib.resources import files
from pathlib import Path

import pytest

from producer.record import EventField, Field
from zixflow_queue.replies.recorder import InboundField

SCRIPTS = [
    resource
    for package in ("producer.scripts", "worker.scripts", "zixflow_queue.replies.scripts")
    for resource in files(package).iterdir()
    if resource.name.endswith(".lua")
]
HASH_OF_KEY = {"record": Field, "record_prefix .. id": Field, "event": EventField,
               "inbound": InboundField}  # fmt: skip
"""The Lua expressions naming a hash key, and the declaration of that hash's fields."""
FIELDS_AT = {"HSET": slice(0, None, 2), "HSETNX": slice(0, 1), "HGET": slice(0, 1),
             "HMGET": slice(0, None), "HDEL": slice(0, None), "HINCRBY": slice(0, 1),
             "HINCRBYFLOAT": slice(0, 1), "HEXISTS": slice(0, 1)}  # fmt: skip
"""Where each hash command's field names stand among its arguments after the key."""
CALL = re.compile(r"redis\.p?call\(")


def calls(source: str) -> list[list[str]]:
    """The arguments of every redis.call/pcall, split at top-level commas."""
    found = []
    for match in CALL.finditer(source):
        depth, args, current, quote = 1, [], "", ""
        for char in source[match.end() :]:
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    break
            elif char == "," and depth == 1:
                args.append(current.strip())
                current = ""
                continue
            current += char
        found.append([*args, current.strip()])
    return found


def hash_fields(source: str) -> list[tuple[type[StrEnum], str]]:
    """(declaration, literal field) for every hash field named in the script."""
    used = []
    for command, key, *rest in (call for call in calls(source) if len(call) > 2):
        declared = HASH_OF_KEY.get(key)
        fields = FIELDS_AT.get(command.strip("'"))
        if declared is None or fields is None:
            continue
        used += [(declared, arg.strip("'")) for arg in rest[fields] if arg.startswith("'")]
    return used


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda resource: resource.name)
def test_every_field_a_script_names_is_declared(script: Path) -> None:
    for declared, field in hash_fields(script.read_text()):
        assert field in set(declared), f"{script.name}: {field!r} is not a {declared.__name__}"


def test_the_check_sees_the_scripts_fields() -> None:
    """It reads the fields of the record, the events and the replies, not nothing."""
    seen = {pair for script in SCRIPTS for pair in hash_fields(script.read_text())}
    assert (Field, "state") in seen and (Field, "reclaims") in seen
    assert (EventField, "attempts") in seen and (InboundField, "outcome") in seen
    assert hash_fields("redis.call('HSET', record, 'state', 'x', 'nope', 1)") == [
        (Field, "state"), (Field, "nope")]  # fmt: skip
