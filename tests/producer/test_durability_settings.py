"""ZQ_DURABLE and a sentinel:// REDIS_URL: what the settings accept; what a wait's answer means."""

from __future__ import annotations

import pytest
import redis

from producer import ConfigurationError, OutcomeUnknown
from producer.durable import Durability
from producer.sentinel_url import parse_sentinel_url
from producer.settings import ProducerSettings, load_settings


def settings_from(monkeypatch: pytest.MonkeyPatch, **variables: str) -> ProducerSettings:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return load_settings(ProducerSettings)


def test_a_sentinel_url_reads_as_kombu_reads_it() -> None:
    url = parse_sentinel_url("sentinel://app:s%40cret@10.0.0.1:26380/3;sentinel://10.0.0.2")
    assert url.sentinels == (("10.0.0.1", 26380), ("10.0.0.2", 26379))
    assert url.master_options == {"db": 3, "username": "app", "password": "s@cret"}
    assert parse_sentinel_url("sentinel://h:1/3;sentinel://h:2/3").db == 3


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sentinel://h:1;sentinel://h:2/3", "the database must be named on the first address"),
        ("sentinel://h:1;redis://h:2", "must be sentinel://host:port[/db] addresses joined"),
        ("sentinel://h:port", "has a bad port"),
        ("sentinel://h:1/zero", "the database after the address must be a number"),
        ("sentinel://h:1?master=m", "must be sentinel://host:port[/db] addresses joined"),
        ("sentinel://:1", "must be sentinel://host:port[/db] addresses joined"),
    ],
)
def test_a_bad_sentinel_url_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        settings_from(monkeypatch, REDIS_URL=url)
    assert str(refused.value).startswith(f"REDIS_URL={url!r}: ")
    assert problem in str(refused.value) and "\n" not in str(refused.value)


def test_the_sentinel_master_and_durable_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, REDIS_URL="sentinel://h:1/2", ZQ_SENTINEL_MASTER="q",
                             ZQ_DURABLE="replica", ZQ_DURABLE_REPLICAS="2")  # fmt: skip
    assert (settings.sentinel_master, settings.durable, settings.durable_replicas) == (
        "q", "replica", 2
    )  # fmt: skip
    assert ProducerSettings.model_fields["durable"].default == "off"


def test_the_wait_must_fit_in_the_socket_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"^ZQ_DURABLE_TIMEOUT=5.0 must be below "):
        settings_from(monkeypatch, ZQ_DURABLE="aof", ZQ_DURABLE_TIMEOUT="5")
    assert settings_from(monkeypatch, ZQ_DURABLE="off").durable_timeout == 5.0  # unused


@pytest.mark.parametrize(
    ("durable", "command"),
    [("off", None), ("aof", ("WAITAOF", 1, 0, 250)), ("replica", ("WAIT", 2, 250))],
)
def test_each_setting_waits_for_its_own(durable: str, command: object) -> None:
    settings = ProducerSettings(durable=durable, durable_replicas=2, durable_timeout=0.25)
    durability = Durability.of(settings)
    assert (durability.command if durability else None) == command


@pytest.mark.parametrize(
    ("durable", "reply", "confirmed"),
    [("aof", [1, 0], True), ("aof", [0, 0], False), ("replica", 2, True),
     ("replica", 1, False)],
)  # fmt: skip
def test_a_count_short_of_the_request_is_outcome_unknown(
    durable: str, reply: object, confirmed: bool
) -> None:
    durability = Durability(durable, replicas=2, timeout=1.0)
    if confirmed:
        durability.confirm(reply)
        return
    with pytest.raises(OutcomeUnknown, match=r"stored but not .* retry with the same idempotency"):
        durability.confirm(reply)


def test_a_refused_wait_names_the_setting_and_what_it_needs() -> None:
    error = Durability("replica", 1, 1.0).refused(redis.ResponseError("WAIT cannot be used "))
    assert str(error) == (
        "ZQ_DURABLE=replica needs a Redis master (WAIT); this Redis answered: WAIT cannot be "
        "used (the jobs were stored, not confirmed durable)"
    )
