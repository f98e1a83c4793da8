"""worker.broker leans on private parts of kombu's Redis transport: they must all still be there.

pyproject pins kombu below its next minor for this reason. These tests read worker/broker.py
itself (which classes extend kombu's, what they override, what they reach through `self` and
`super()`), so they follow it as it changes, and fail, naming the part, the day a kombu release
renames or reshapes one of those parts.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import tomllib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from kombu.connection import Connection
from kombu.transport import redis as kombu_redis
from kombu.utils import json as kombu_json
from packaging.requirements import Requirement

from producer.settings import ProducerSettings
from worker import broker

BROKER_TREE = ast.parse(inspect.getsource(broker))


def kombu_base(cls: type) -> type | None:
    """The kombu class `cls` extends, if any."""
    return next((base for base in cls.__mro__[1:] if base.__module__.startswith("kombu.")), None)


OURS = [
    cls
    for cls in vars(broker).values()
    if inspect.isclass(cls) and cls.__module__ == broker.__name__ and kombu_base(cls)
]
"""The classes of worker.broker that extend kombu's."""


def own_classes(cls: type) -> list[type]:
    """`cls` and the classes of worker.broker it inherits from (SentinelChannel has Channel's)."""
    return [k for k in cls.__mro__ if k.__module__ == broker.__name__]


OVERRIDDEN = sorted(
    {(cls, name) for cls in OURS for own in own_classes(cls) for name in vars(own)
     if not name.startswith("__")},
    key=lambda pair: (pair[0].__name__, pair[1]),
)  # fmt: skip
"""(class, name) for each attribute our classes define (or inherit from ours) in place of
kombu's: an override shared by SentinelChannel must fit kombu's SentinelChannel too."""

HOLDERS = {"connection": kombu_redis.Transport, "channel": kombu_redis.Channel}
"""What `self.connection` and `self.channel` are, in kombu's channel and QoS."""

LOCALS = {"channel": kombu_redis.Channel}
"""What a local variable of this name is, in worker.broker's methods (the poller's loops)."""

CALLERS: dict[str, tuple[type, str, str]] = {
    "_brpop_read": (kombu_redis.Channel, "__init__", "self._brpop_read"),
    "_create_client": (kombu_redis.Channel, "conn_or_acquire", "self._create_client("),
    "_deliver": (kombu_redis.Channel, "_brpop_read", "self.connection._deliver("),
    "restore_visible": (
        kombu_redis.MultiChannelPoller,
        "maybe_restore_messages",
        "channel.qos.restore_visible(",
    ),
    "maybe_check_brpop_health": (
        kombu_redis.Transport,
        "register_with_event_loop",
        "cycle.maybe_check_brpop_health",
    ),
}
"""For each method kombu calls and worker.broker may override: the kombu method that calls it,
and how."""


def parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """Name, kind and default of each parameter: what a caller relies on, not annotations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def provides(cls: type, name: str) -> bool:
    """Whether kombu's `cls` has `name`: as a class attribute, or one an __init__ of it sets."""
    if hasattr(cls, name):
        return True
    inits = [vars(k).get("__init__") for k in cls.__mro__ if k.__module__.startswith("kombu.")]
    return any(f"self.{name} =" in inspect.getsource(init) for init in inits if init)


def reached(cls: type) -> set[tuple[str, str]]:
    """(holder, name) for each `self.name`, `super().name`, `self.holder.name` and
    `local.name` (LOCALS) in `cls` and the classes of worker.broker it inherits from."""
    own = {k.__name__ for k in own_classes(cls)}
    nodes = [n for n in BROKER_TREE.body if isinstance(n, ast.ClassDef) and n.name in own]
    names: set[tuple[str, str]] = set()
    for sub in (sub for node in nodes for sub in ast.walk(node)):
        if not isinstance(sub, ast.Attribute):
            continue
        target = sub.value
        if isinstance(target, ast.Name) and target.id == "self":
            names.add(("self", sub.attr))
        elif isinstance(target, ast.Name) and target.id in LOCALS:
            names.add((f"local {target.id}", sub.attr))
        elif isinstance(target, ast.Call) and getattr(target.func, "id", None) == "super":
            names.add(("super", sub.attr))
        elif isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == "self":
            names.add((target.attr, sub.attr))
    return names


REACHED = [(cls, holder, name) for cls in OURS for holder, name in sorted(reached(cls))]


def test_the_broker_extends_kombu() -> None:
    assert broker.Transport in OURS and broker.Channel in OURS
    assert any(name.startswith("_") for _, name in OVERRIDDEN)  # the reason for the pin


@pytest.mark.parametrize(
    ("cls", "name"), OVERRIDDEN, ids=[f"{c.__name__}.{n}" for c, n in OVERRIDDEN]
)
def test_each_override_replaces_something_kombu_has(cls: type, name: str) -> None:
    """An override of a name kombu no longer has would silently never be used."""
    base = kombu_base(cls)
    assert base is not None and provides(base, name), f"kombu's {base} has no {name} any more"
    mine, theirs = getattr(cls, name), getattr(base, name)
    if inspect.isclass(mine):  # the class attribute that plugs ours in
        assert inspect.isclass(theirs) and issubclass(mine, theirs)
    elif callable(mine):
        assert parameters(mine) == parameters(theirs)
        assert name in CALLERS, f"where does kombu call {name}? Say so in CALLERS"
    else:
        assert isinstance(mine, type(theirs))


@pytest.mark.parametrize(
    ("cls", "holder", "name"), REACHED, ids=[f"{c.__name__}.{h}.{n}" for c, h, n in REACHED]
)
def test_what_the_broker_reaches_in_kombu_exists(cls: type, holder: str, name: str) -> None:
    if holder == "self" and any(name in vars(own) for own in own_classes(cls)):
        return  # ours
    base = kombu_base(cls)
    assert base is not None
    if holder in ("self", "super"):
        owner: type | None = base
    elif holder.startswith("local "):
        owner = LOCALS[holder.removeprefix("local ")]
    else:
        assert provides(base, holder), f"kombu's {base.__qualname__} has no {holder} any more"
        owner = HOLDERS.get(holder)
    assert owner is not None, f"{cls.__name__} reaches self.{holder}: which kombu class is it?"
    assert provides(owner, name), f"kombu's {owner.__qualname__} has no {name} any more"


@pytest.mark.parametrize("name", sorted(CALLERS))
def test_kombu_still_calls_the_hooks_the_broker_may_override(name: str) -> None:
    """kombu's own code reaches each hook: otherwise an override of it is dead code."""
    cls, method, call = CALLERS[name]
    caller = vars(cls).get(method)
    assert caller is not None, f"kombu's {cls.__qualname__} has no {method} any more"
    assert call in inspect.getsource(caller), f"{cls.__qualname__}.{method} no longer calls {name}"


def test_the_classes_are_plugged_in() -> None:
    """Each of our classes replaces kombu's where kombu looks it up."""
    assert broker.Transport.Channel is broker.Channel
    assert broker.SentinelTransport.Channel is broker.SentinelChannel
    qos = vars(broker).get("QoS")
    assert qos is None or broker.Channel.QoS is qos
    with Connection("redis://127.0.0.1:1/0", transport=broker.Transport) as connection:
        transport = connection.transport
        assert isinstance(transport, broker.Transport)
        assert transport.client is connection  # what _create_client checks
        assert isinstance(transport.cycle, broker.Poller)


def test_a_sentinel_url_gets_the_sentinel_transport_and_options_kombu_reads() -> None:
    url = "sentinel://127.0.0.1:26401/2;sentinel://127.0.0.1:26402"
    settings = ProducerSettings(redis_url=url, sentinel_master="queue-master")
    options = broker.sentinel_options(settings)
    assert broker.transport_name(url) == "worker.broker:SentinelTransport"
    assert broker.transport_name("redis://127.0.0.1/0") == "worker.broker:Transport"
    assert broker.sentinel_options(ProducerSettings(redis_url="redis://127.0.0.1/0")) == {}
    assert options["master_name"] == "queue-master"
    assert set(options) <= set(kombu_redis.SentinelChannel.from_transport_options)
    connection = Connection(url, transport=broker.SentinelTransport, transport_options=options)
    with connection:
        assert isinstance(connection.transport.cycle, broker.Poller)
        assert connection.transport.default_port == 26379
        assert (connection.virtual_host, connection.alt[1]) == ("2", "sentinel://127.0.0.1:26402")


@pytest.mark.parametrize("strategy", [None, broker.stay_on_sentinels], ids=["kombu's", "ours"])
def test_after_a_failed_connect_the_sentinel_transport_stays(strategy: Any) -> None:
    """kombu's round robin switches to the next address and to kombu's own transport with it
    (and drops the credentials of the first address); stay_on_sentinels keeps all three."""
    url = "sentinel://:secret@127.0.0.1:26401/2;sentinel://127.0.0.1:26402"
    options = {"master_name": "mymaster"}
    connection = Connection(url, transport=broker.SentinelTransport, transport_options=options,
                            failover_strategy=strategy)  # fmt: skip
    connection.maybe_switch_next()  # what kombu does after a failed connect
    kept = (isinstance(connection.transport, broker.SentinelTransport),
            connection.password, connection.virtual_host)  # fmt: skip
    if strategy is None:
        assert kept == (False, None, "2")  # if kombu stops doing this, drop the workaround
    else:
        assert kept == (True, "secret", "2")
        assert broker.failover_strategy(url) is broker.stay_on_sentinels
        assert broker.failover_strategy("redis://127.0.0.1/0") is None


def test_the_poller_finds_the_subscriber_where_kombu_caches_it() -> None:
    """Poller drops `subclient` only once built: kombu caches it in the channel's __dict__."""
    subclient = inspect.getattr_static(kombu_redis.Channel, "subclient")
    assert isinstance(subclient, functools.cached_property)
    assert subclient.attrname == "subclient"


def test_an_unreadable_item_raises_the_error_the_broker_catches() -> None:
    """Channel._brpop_read dead-letters a JSONDecodeError, with its `doc`."""
    loads = vars(kombu_redis)["loads"]  # what _brpop_read calls on each item
    assert loads is kombu_json.loads
    with pytest.raises(json.JSONDecodeError) as raised:
        loads("not json")
    assert raised.value.doc == "not json"


def test_the_installed_kombu_is_within_the_pinned_range() -> None:
    """The version these tests ran on is one the pin allows, and the pin has a ceiling."""
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pins = [Requirement(line) for line in project["project"]["dependencies"]]
    (kombu,) = [pin for pin in pins if pin.name == "kombu"]
    assert kombu.specifier.contains(version("kombu"))
    assert any(spec.operator == "<" for spec in kombu.specifier), "kombu needs an upper bound"
