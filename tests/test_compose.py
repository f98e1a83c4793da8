"""docker-compose.yml, checked without Docker: how its services fit together and with the code.

No Docker engine runs the file in CI, so these tests hold the relations it must keep: between
services (dependencies, ports, profiles, who gets the key), with the code (modules it runs, the
worker's timeouts) and with the commands the README and the file's header show.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app

from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()

DEFAULT_PORTS = {"redis-server": 6379, "redis-cli": 6379}
"""Ports the programs use when their command names none."""
KEY_HOLDERS = {"worker", "flower"}
"""The only services that may take ZIXFLOW_API_KEY from the environment (flower runs
worker code); all others, the sandbox above all, must never see the real key."""


def seconds(duration: str) -> float:
    """A compose duration ("1m30s", "90s", "2m") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in parts)


def shell_text(command: str | list[str]) -> str:
    """A command (exec or shell form, or a healthcheck test) as one line of text."""
    if isinstance(command, str):
        return command
    words = command[1:] if command and command[0] in ("CMD", "CMD-SHELL") else command
    return " ".join(words)


def all_commands(service: dict[str, Any]) -> str:
    """The service's command and health check, as text."""
    texts = [shell_text(service["command"])] if "command" in service else []
    if "healthcheck" in service:
        texts.append(shell_text(service["healthcheck"]["test"]))
    return "\n".join(texts)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment, from either of compose's two forms."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(entry.split("=", 1) for entry in env)
    return {name: str(value) for name, value in env.items()}


def default_of(value: str) -> str:
    """What `${VAR:-default}` gives when VAR is unset; a plain value as it is."""
    match = re.fullmatch(r"\$\{\w+:?-(.*)\}", value)
    return match.group(1) if match else value


def listening_port(service: dict[str, Any]) -> int | None:
    """The port the service's program listens on: its --port, else the program's default."""
    text = shell_text(service.get("command", []))
    if match := re.search(r"--port[=\s]+(\d+)", text):
        return int(match.group(1))
    program = text.split()[0] if text else ""
    return DEFAULT_PORTS.get(program)


def probed_ports(test: str | list[str]) -> list[int]:
    """The ports a health check reaches: in URLs, or redis-cli's -p (default 6379)."""
    text = shell_text(test)
    ports = [int(port) for port in re.findall(r"https?://(?:127\.0\.0\.1|localhost):(\d+)", text)]
    if match := re.search(r"\bredis-cli\b(?:.*?\s-p\s+(\d+))?", text):
        ports.append(int(match.group(1) or DEFAULT_PORTS["redis-cli"]))
    return ports


def shown_compose_commands() -> dict[str, list[str]]:
    """Every `docker compose` command line in the file's header and the README's shell blocks,
    as words (variables set before it included), by where it is shown."""
    header = [line.lstrip("# ") for line in COMPOSE_TEXT.splitlines() if line.startswith("#")]
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)).splitlines()
    shown = [("docker-compose.yml", line) for line in header]
    shown += [("README", line) for line in blocks]
    return {
        f"{place}: {line.split(' #')[0].strip()}": shlex.split(line, comments=True)
        for place, line in shown
        if "docker compose " in line
    }


def option_values(words: list[str], option: str) -> list[str]:
    """The values given to `option` (`--profile a --profile b` → a, b)."""
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == option]


PROFILES = {profile for service in SERVICES.values() for profile in service.get("profiles", [])}
ALWAYS_ON = {name for name, service in SERVICES.items() if not service.get("profiles")}
WITH_PORT_CHECKS = [
    name
    for name, service in SERVICES.items()
    if "healthcheck" in service and probed_ports(service["healthcheck"]["test"])
]


# --- the worker and its shutdown ---


def test_the_worker_outlives_its_longest_send_and_the_shutdown_grace() -> None:
    """Docker kills a container stop_grace_period after SIGTERM: a worker must be done by then."""
    fields = WorkerSettings.model_fields
    longest_send = fields["connect_timeout"].default + fields["read_timeout"].default
    needed = longest_send + fields["shutdown_grace"].default
    assert seconds(SERVICES["worker"]["stop_grace_period"]) > needed


def test_the_worker_health_check_pings_the_node_the_worker_runs() -> None:
    command = shell_text(SERVICES["worker"]["command"])
    named = re.search(r"(?:-n|--hostname)[=\s]+(\S+)", command)
    node = named.group(1).replace("%h", "$$HOSTNAME") if named else "celery@$$HOSTNAME"
    check = shell_text(SERVICES["worker"]["healthcheck"]["test"])
    assert "inspect ping" in check
    assert f"-d {node}" in check


# --- ports ---


def test_some_health_checks_name_a_port() -> None:
    assert WITH_PORT_CHECKS, "the port checks below would check nothing"


@pytest.mark.parametrize("name", WITH_PORT_CHECKS)
def test_each_health_check_probes_the_port_its_service_listens_on(name: str) -> None:
    service = SERVICES[name]
    listening = listening_port(service)
    assert listening is not None, f"{name}: on which port does it listen?"
    assert set(probed_ports(service["healthcheck"]["test"])) == {listening}


@pytest.mark.parametrize("name", [name for name in SERVICES if "ports" in SERVICES[name]])
def test_published_ports_lead_to_the_port_listened_on(name: str) -> None:
    container_ports = {int(str(mapping).split(":")[-1]) for mapping in SERVICES[name]["ports"]}
    assert container_ports == {listening_port(SERVICES[name])}


@pytest.mark.parametrize("variable", ["REDIS_URL", "ZIXFLOW_BASE_URL"])
def test_the_worker_reaches_services_where_they_listen(variable: str) -> None:
    url = urlsplit(default_of(environment(SERVICES["worker"])[variable]))
    assert url.hostname in SERVICES, f"{variable} names no service: {url.geturl()}"
    assert url.port == listening_port(SERVICES[url.hostname])


# --- profiles and dependencies ---


def test_what_the_worker_depends_on_starts_without_profiles() -> None:
    """`docker compose up` (no profile) must start the worker: its dependencies are on too."""
    assert "worker" in ALWAYS_ON
    assert set(SERVICES["worker"].get("depends_on", {})) <= ALWAYS_ON


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_dependency_exists_whenever_its_dependent_does(name: str) -> None:
    profiles = set(SERVICES[name].get("profiles", []))
    for dependency in SERVICES[name].get("depends_on", {}):
        assert dependency in SERVICES
        theirs = set(SERVICES[dependency].get("profiles", []))
        assert not theirs or (profiles and profiles <= theirs), f"{name} → {dependency}"


def test_no_variable_is_required_by_compose() -> None:
    """Compose substitutes variables in every service, enabled or not: a `${VAR:?}` of one
    profile's service would stop every command run without VAR."""
    settings = [line for line in COMPOSE_TEXT.splitlines() if not line.lstrip().startswith("#")]
    assert not re.findall(r"\$\{\w+:?\?", "\n".join(settings))


def test_some_compose_commands_are_shown() -> None:
    commands = shown_compose_commands()
    for place in ("docker-compose.yml", "README"):
        shown = [words for where, words in commands.items() if where.startswith(place)]
        assert any("sandbox" in option_values(words, "--profile") for words in shown)  # try-out
        assert any("ZIXFLOW_API_KEY=..." in words for words in shown)  # sending for real


@pytest.mark.parametrize("where", shown_compose_commands())
def test_each_command_shown_fits_the_file(where: str) -> None:
    words = shown_compose_commands()[where]
    profiles = set(option_values(words, "--profile"))
    variables = {word.split("=")[0] for word in words[: words.index("docker")] if "=" in word}
    assert profiles <= PROFILES
    assert {scale.split("=")[0] for scale in option_values(words, "--scale")} <= set(SERVICES)
    if "FLOWER_PASSWORD" in variables:
        assert "flower" in profiles  # else Flower, and so the password, goes unused
    if "ZIXFLOW_API_KEY" in variables:  # the real key: to the real API, not to the sandbox
        assert "ZIXFLOW_BASE_URL" in variables and "sandbox" not in profiles


def test_the_sandbox_mode_pairs_the_workers_with_the_sandbox() -> None:
    """Without ZIXFLOW_* set, the workers send to the sandbox with the key it expects."""
    worker = environment(SERVICES["worker"])
    sandbox = shlex.split(shell_text(SERVICES["sandbox"]["command"]))
    assert urlsplit(default_of(worker["ZIXFLOW_BASE_URL"])).hostname == "sandbox"
    assert default_of(worker["ZIXFLOW_API_KEY"]) == sandbox[sandbox.index("--api-key") + 1]
    assert SERVICES["sandbox"].get("profiles"), "the sandbox would start in real-API mode too"


# --- the key ---


def takes_the_key(service: dict[str, Any]) -> bool:
    """Whether the service is handed ZIXFLOW_API_KEY from the environment compose runs in."""
    text = "\n".join([*environment(service).values(), all_commands(service)])
    return "env_file" in service or bool(re.search(r"\$\{?ZIXFLOW_API_KEY\b", text))


def test_the_workers_take_the_key_from_the_environment() -> None:
    assert takes_the_key(SERVICES["worker"])


@pytest.mark.parametrize("name", sorted(set(SERVICES) - KEY_HOLDERS))
def test_no_other_service_gets_the_key(name: str) -> None:
    assert not takes_the_key(SERVICES[name])


def test_the_image_bakes_in_no_key() -> None:
    instructions = [line for line in DOCKERFILE.splitlines() if not line.startswith("#")]
    assert "ZIXFLOW_API_KEY" not in "\n".join(instructions)


# --- commands and the code they run ---


def celery_apps(text: str) -> list[str]:
    """The apps of `celery -A APP ...` commands."""
    return re.findall(r"\bcelery\s+-A\s+([\w.:]+)", text)


def modules_run(name: str) -> list[str]:
    """The modules a service's commands import: `python -m X`, `celery -A X`, Flower."""
    text = all_commands(SERVICES[name])
    modules = re.findall(r"\bpython3?\s+-m\s+([\w.]+)", text)
    modules += [app.partition(":")[0] for app in celery_apps(text)]
    if re.search(r"\bcelery\s+-A\s+\S+\s+flower\b", text):
        modules.append("flower")
    return sorted(set(modules))


RUN = [(name, module) for name in sorted(SERVICES) for module in modules_run(name)]
APPS = sorted({app for name in SERVICES for app in celery_apps(all_commands(SERVICES[name]))})


def test_the_commands_run_python_code() -> None:
    assert {name for name, _ in RUN} == {"worker", "flower", "sandbox"}


@pytest.mark.parametrize(("name", "module"), RUN, ids=[f"{n}-{m}" for n, m in RUN])
def test_each_module_a_command_runs_exists(name: str, module: str) -> None:
    assert importlib.util.find_spec(module) is not None, f"{name} runs {module}: not found"


@pytest.mark.parametrize("app", APPS)
def test_each_celery_app_named_is_found(app: str) -> None:
    """As `celery -A` looks it up."""
    assert isinstance(find_app(app), Celery)


@pytest.mark.parametrize(("name", "module"), RUN, ids=[f"{n}-{m}" for n, m in RUN])
def test_the_image_holds_what_each_command_runs(name: str, module: str) -> None:
    """Our packages are copied in; Flower comes with the `flower` extra."""
    top = module.partition(".")[0]
    if top == "flower":
        assert re.search(r"pip install '\.\[[^\]]*flower", DOCKERFILE)
    else:
        assert re.search(rf"^COPY {top} \./{top}$", DOCKERFILE, flags=re.MULTILINE), top


def test_the_image_starts_a_worker_as_compose_does() -> None:
    """`docker run` of the image, with no command, is one more worker like compose's."""
    (cmd,) = re.findall(r"^CMD (\[.*\])$", DOCKERFILE, flags=re.MULTILINE)
    assert json.loads(cmd) == SERVICES["worker"]["command"]


def test_the_image_runs_as_a_user() -> None:
    users = re.findall(r"^USER (\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


# --- restarts and Redis ---


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_restarts(name: str) -> None:
    policy = SERVICES[name].get("restart", "no")
    assert policy in ("always", "unless-stopped") or policy.startswith("on-failure")


def test_redis_keeps_its_data_and_refuses_to_evict() -> None:
    """Jobs live in Redis: persisted to the append-only file on a volume, and never evicted."""
    redis = SERVICES["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    volumes = {volume.split(":")[0] for volume in redis["volumes"] if volume.endswith(":/data")}
    assert volumes and volumes <= set(COMPOSE.get("volumes") or {})
