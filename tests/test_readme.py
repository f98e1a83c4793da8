"""The README stays true to the code: every setting in its table, the commands it names exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.cli import build_parser
from producer.settings import environment_variables
from worker.settings import WorkerSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
MAKEFILE = (Path(__file__).resolve().parent.parent / "Makefile").read_text()


@pytest.mark.parametrize("variable", [row[0] for row in environment_variables(WorkerSettings)])
def test_every_setting_is_in_the_configuration_table(variable: str) -> None:
    assert f"| `{variable}` |" in README


@pytest.mark.parametrize("target", ["demo", "test", "quick", "lint", "bench"])
def test_make_targets_named_in_the_readme_exist(target: str) -> None:
    assert f"make {target}" in README
    assert f"\n{target}:" in MAKEFILE


@pytest.mark.parametrize("command", ["send", "bulk", "status", "dead", "sandbox", "demo"])
def test_cli_commands_named_in_the_readme_exist(command: str) -> None:
    assert f"zixflow-queue {command}" in README
    argument = "list" if command == "dead" else "x"
    assert build_parser().parse_known_args([command, argument])[0].command == command
