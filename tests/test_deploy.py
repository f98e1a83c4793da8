"""deploy/: the KEDA example and the alert rules, checked against the code they depend on."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app

from producer.settings import ProducerSettings
from tests.zixflow_queue.test_metrics import QUIET, exposed
from worker.settings import WorkerSettings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KEDA = {
    doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "keda-scaledobject.yaml").read_text())
}
RULES: list[dict[str, Any]] = [
    rule
    for group in yaml.safe_load((DEPLOY / "prometheus-alerts.yaml").read_text())["groups"]
    for rule in group["rules"]
]
SELECTOR = re.compile(r"\b(zixflow_queue_\w+)(?:\{([^}]*)\})?")


def container() -> dict[str, Any]:
    (worker,) = KEDA["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(worker)


def environment() -> dict[str, Any]:
    return {variable["name"]: variable for variable in container()["env"]}


def trigger() -> dict[str, str]:
    (redis,) = KEDA["ScaledObject"]["spec"]["triggers"]
    assert redis["type"] == "redis"
    return dict(redis["metadata"])


def exposed_samples() -> dict[str, set[str]]:
    """Every sample name /metrics exposes, with its label names: taken from the collector, for
    a snapshot with a value behind every label."""
    snapshot = replace(QUIET, counters={"attempt:throttled": 1, "inbound:matched": 1},
                       deferrals={"1234567890": 1})  # fmt: skip
    return {
        sample.name: set(sample.labels) - {"le"}
        for family in exposed(snapshot).values()
        for sample in family.samples
    }


def test_keda_scales_the_deployment_it_ships() -> None:
    scaled = KEDA["ScaledObject"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == KEDA["Deployment"]["metadata"]["name"]
    assert scaled["minReplicaCount"] >= 1  # workers also bring scheduled jobs due
    assert scaled["maxReplicaCount"] > scaled["minReplicaCount"]


def test_keda_reads_the_ready_list_of_the_default_queue() -> None:
    assert trigger()["listName"] == ProducerSettings.model_construct().keys.ready
    assert int(trigger()["listLength"]) > 0
    assert int(trigger()["activationListLength"]) >= 0


def test_keda_asks_the_redis_the_workers_use() -> None:
    url = urlsplit(environment()["REDIS_URL"]["value"])
    assert trigger()["address"] == f"{url.hostname}:{url.port}"
    assert trigger()["databaseIndex"] == url.path.lstrip("/")


def test_the_deployment_runs_workers_that_finish_their_sends() -> None:
    command = container()["command"]
    assert command[:1] == ["celery"] and command[-2:] == ["worker", "--loglevel=INFO"]
    assert isinstance(find_app(command[command.index("-A") + 1]), Celery)
    fields = WorkerSettings.model_fields
    longest = fields["connect_timeout"].default + fields["read_timeout"].default
    grace = KEDA["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > longest + fields["shutdown_grace"].default


def test_the_key_comes_from_a_secret() -> None:
    key = environment()["ZIXFLOW_API_KEY"]
    assert "value" not in key and "secretKeyRef" in key["valueFrom"]


@pytest.mark.parametrize("rule", RULES, ids=[rule["alert"] for rule in RULES])
def test_each_alert_has_what_alertmanager_routes_on(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]


@pytest.mark.parametrize("rule", RULES, ids=[rule["alert"] for rule in RULES])
def test_each_alert_reads_metrics_that_are_exposed(rule: dict[str, Any]) -> None:
    samples = exposed_samples()
    selectors = SELECTOR.findall(rule["expr"])
    assert selectors, rule["expr"]
    for name, matchers in selectors:
        assert name in samples, name
        assert set(re.findall(r"(\w+)\s*[=!]~?", matchers)) <= samples[name], matchers


def test_the_alerts_cover_what_operators_asked_for() -> None:
    read = {name for rule in RULES for name, _ in SELECTOR.findall(rule["expr"])}
    assert read >= {"zixflow_queue_dead_letters", "zixflow_queue_workers",
                    "zixflow_queue_attempts_total", "zixflow_queue_oldest_waiting_seconds",
                    "zixflow_queue_events_failed"}  # fmt: skip
