"""The README stays true to the code: its configuration table, its make targets, its commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from producer.settings import environment_variables
from worker.settings import WorkerSettings
from zixflow_queue.cli.main import parse_arguments
from zixflow_queue.sandbox.__main__ import build_parser as sandbox_parser
from zixflow_queue.service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
SETTINGS = list(
    {
        row[0]: row
        for settings in (WorkerSettings, ServiceSettings)  # workers' and the HTTP service's
        for row in environment_variables(settings)
    }.values()
)


def configuration_table() -> dict[str, str]:
    """Variable → default, from the table under '## Configuration'."""
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.*?) \|", section, flags=re.MULTILINE)
    return {variable: default.strip("`") for variable, default in rows}


def cli_commands() -> list[list[str]]:
    """Every `zixflow-queue ...` line of the README's shell blocks, as arguments."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("zixflow-q")]


@pytest.mark.parametrize(("variable", "default", "_"), SETTINGS)
def test_every_setting_is_in_the_configuration_table(variable: str, default: str, _: str) -> None:
    table = configuration_table()
    assert variable in table
    assert table[variable] in (default, "none")


def test_the_configuration_table_names_only_real_settings() -> None:
    assert set(configuration_table()) == {variable for variable, _, _ in SETTINGS}


@pytest.mark.parametrize("target", ["demo", "test", "quick", "lint", "bench"])
def test_make_targets_named_in_the_readme_exist(target: str) -> None:
    assert f"make {target}" in README
    assert f"\n{target}:" in MAKEFILE


def test_the_readme_shows_every_cli_command() -> None:
    shown = {argv[0] for argv in cli_commands()}
    assert shown == {"send", "bulk", "status", "cancel", "dead", "replies", "events", "sandbox",
                     "demo", "serve", "stats"}  # fmt: skip


@pytest.mark.parametrize("argv", cli_commands(), ids=" ".join)
def test_every_cli_line_in_the_readme_parses(argv: list[str]) -> None:
    args = parse_arguments(argv)  # exits, failing the test, on a bad line
    if args.command == "sandbox":
        sandbox_parser().parse_args(args.sandbox_args)
