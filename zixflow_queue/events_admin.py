"""Status events that failed for good: listed, replayed and purged (the CLI's and the dashboard's).

A worker gives up on an event after ZQ_EVENT_MAX_ATTEMPTS tries, or at once when the receiver
refuses it (a 4xx): the event is kept in `Keys.events_dead` with its hash (`Keys.event`) until
the records expire. Replaying sends the same event (same body, same `webhook-id`) again with a
fresh budget of attempts, so a receiver that deduplicates by `webhook-id` sees it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from producer.record import EventField
from producer.settings import ProducerSettings
from producer.store import Store, load_script, storage_boundary
from zixflow_queue.indexed import Ranked, hashes, newest


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """One status event that failed for good."""

    id: str
    """Its `webhook-id`: `<job id>.<type>` (and the Zixflow eventId, for a reply)."""
    type: str
    job_id: str
    url: str
    attempts: int
    error: str
    failed_at: float
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


class FailedEvents:
    """The failed status events of one deployment (sync redis-py: for the CLI and the dashboard)."""

    def __init__(self, client: redis.Redis, settings: ProducerSettings) -> None:
        self._client = client
        self._keys = settings.keys
        self._ttl = settings.record_ttl
        self._script = load_script(client, "zixflow_queue.scripts", "failed_events")

    @classmethod
    def of(cls, store: Store, settings: ProducerSettings) -> FailedEvents:
        """The failed events in a producer's store."""
        return cls(store.records, settings)

    def entries(self, limit: int | None = None) -> list[FailedEvent]:
        """The failed events, newest first (at most `limit`); those expired are left out."""
        with storage_boundary("list the failed status events", writes=False):
            return self._read(newest(self._client, self._keys.events_dead, count=limit))

    def get_many(self, event_ids: Iterable[str]) -> list[FailedEvent]:
        """The failed events of these ids, in order; ids not failed (or expired) are left out."""
        ids = list(event_ids)
        if not ids:
            return []
        with storage_boundary("read the failed status events", writes=False):
            scores = self._client.zmscore(self._keys.events_dead, ids)
            return self._read([(i, s) for i, s in zip(ids, scores, strict=True) if s is not None])

    def replay(self, event_ids: Iterable[str] | None = None) -> list[str]:
        """Deliver these events (all when None) again with a fresh budget; the ids replayed."""
        return self._run("replay", event_ids)

    def purge(self, event_ids: Iterable[str] | None = None) -> list[str]:
        """Delete these events (all when None); the ids deleted."""
        return self._run("purge", event_ids)

    def _run(self, action: str, event_ids: Iterable[str] | None) -> list[str]:
        ids = [] if event_ids is None else list(event_ids)
        if event_ids is not None and not ids:
            return []
        keys = self._keys
        with storage_boundary(f"{action} the failed status events"):
            done: list[str] = self._script(
                keys=[keys.events_dead, keys.events_ready],
                args=[action, "all" if event_ids is None else "some", keys.event.prefix,
                      self._ttl, *ids],
            )  # fmt: skip
        return done

    def _read(self, ranked: Ranked) -> list[FailedEvent]:
        return [_failed(*found) for found in hashes(self._client, self._keys.event, ranked)]


def _failed(event_id: str, failed_at: float, fields: dict[str, str]) -> FailedEvent:
    return FailedEvent(
        id=event_id,
        type=fields.get(EventField.TYPE, ""),
        job_id=fields.get(EventField.JOB_ID, ""),
        url=fields.get(EventField.URL, ""),
        attempts=int(fields.get(EventField.ATTEMPTS) or 0),
        error=fields.get(EventField.ERROR, ""),
        failed_at=failed_at,
        created_at=float(fields.get(EventField.CREATED_AT) or 0),
    )
