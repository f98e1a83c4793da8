"""docker-compose.yml, checked without Docker: its promises, and that its commands run here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smh])", duration))


def test_services_are_all_there() -> None:
    assert set(SERVICES) == {"redis", "worker", "flower", "sandbox"}


def test_redis_persists_refuses_eviction_and_reports_health() -> None:
    redis = SERVICES["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_worker_scales() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_commands_are_exec_form(name: str) -> None:
    assert isinstance(SERVICES[name]["command"], list)


def test_worker_sends_task_events_and_outlives_its_sends() -> None:
    worker = SERVICES["worker"]
    assert worker["command"][:4] == ["celery", "-A", "worker", "worker"]
    assert "-E" in worker["command"]
    # The longest send in flight: connect + read timeout of the worker's defaults.
    defaults = WorkerSettings()
    assert seconds(worker["stop_grace_period"]) > defaults.connect_timeout + defaults.read_timeout


def test_worker_health_check_pings_its_own_node() -> None:
    check = SERVICES["worker"]["healthcheck"]["test"]
    assert "inspect ping" in check[-1] and "celery@$$HOSTNAME" in check[-1]


def test_workers_wait_for_a_healthy_redis() -> None:
    for name in ("worker", "flower"):
        assert SERVICES[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_flower_requires_basic_auth_from_the_environment() -> None:
    flower = " ".join(SERVICES["flower"]["command"])
    assert "--basic-auth=${FLOWER_USER" in flower
    assert "${FLOWER_PASSWORD:?" in flower


def test_workers_reach_redis_and_by_default_the_sandbox() -> None:
    environment = SERVICES["worker"]["environment"]
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["ZIXFLOW_BASE_URL"] == "${ZIXFLOW_BASE_URL:-http://sandbox:8088}"
    assert SERVICES["sandbox"]["command"][-2:] == ["--port", "8088"]


def test_the_image_runs_as_a_user_and_installs_flower() -> None:
    lines = [line.split() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = {words[0]: words[1:] for words in lines if words and words[0].isupper()}
    assert instructions["FROM"] == ["python:3.11-slim"]
    assert instructions["USER"] not in (["root"], ["0"])
    assert "'.[flower]'" in instructions["RUN"]


def test_the_key_comes_from_the_environment() -> None:
    for name in ("worker", "sandbox"):
        assert SERVICES[name]["environment"]["ZIXFLOW_API_KEY"].startswith("${ZIXFLOW_API_KEY")
    assert "ZIXFLOW_API_KEY" not in (ROOT / "Dockerfile").read_text().replace("# ", "")


@pytest.mark.parametrize(
    ("name", "help_command"),
    [
        ("worker", ["celery", "-A", "worker", "worker", "--help"]),
        ("flower", ["celery", "-A", "worker", "flower", "--help"]),
        ("sandbox", ["python", "-m", "zixflow_queue.sandbox", "--help"]),
    ],
)
def test_each_command_runs_without_docker(name: str, help_command: list[str]) -> None:
    program = SERVICES[name]["command"][0]
    assert program == help_command[0]
    executable = sys.executable if program == "python" else shutil.which(program)
    if executable is None:  # the venv's own scripts, when the venv is not on PATH
        executable = str(Path(sys.executable).with_name(program))
    done = subprocess.run(
        [executable, *help_command[1:]], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
