"""kombu's Redis transport, made to survive Redis going away.

When the broker connection drops, Celery closes it, and kombu's channel then tries to put its
unacknowledged messages back through the connection it has just released: the AttributeError
that raises stops the worker for good (kombu 5.7). Those messages are safe in Redis anyway,
and come back after the visibility timeout; so the failed restore is logged and the worker
reconnects as it should.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)


class QoS(kombu_redis.QoS):
    """Unacked-message bookkeeping that tolerates a connection already gone."""

    def restore_unacked_once(self, stderr: Any = None) -> Any:
        try:
            return super().restore_unacked_once(stderr)  # type: ignore[no-untyped-call]
        except (AttributeError, *kombu_redis.Transport.connection_errors) as error:
            log.warning("could not return unacknowledged messages now (%r): they come back "
                        "after the visibility timeout", error)  # fmt: skip
            return None


class Channel(kombu_redis.Channel):
    """The Redis channel, with the tolerant QoS."""

    QoS = QoS


class Transport(kombu_redis.Transport):
    """The Redis transport, with the tolerant channel."""

    Channel = Channel
