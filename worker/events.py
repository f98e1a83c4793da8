"""Status events for the app: signed per Standard Webhooks, delivered at least once.

Scripts queue an event when a job is sent, fails for good, is canceled or gets a reply. Each
worker's sender takes events into its held set (so a killed worker's events are given back
like its jobs), builds the body once (so every retry sends the same bytes under the same
`webhook-id`), signs it, and POSTs it to the event's URL: 2xx delivers it; a timeout, a
refused connection, 408, 429 or a 5xx is retried with backoff; anything else, or too many
tries, leaves it failed for good, kept for `zixflow-queue events` to list and replay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis as AsyncRedis
from standardwebhooks import Webhook

from producer.record import EventField
from producer.status import JobStatus
from worker.backoff import backoff_delay
from worker.callbacks import CallbackClient, Delivery
from worker.event_loop import pause
from worker.jobs import worker_script
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

IDLE_POLL = 0.1
"""Seconds between looks at an empty event list."""


@dataclass(frozen=True, slots=True)
class Ended:
    """How one delivery attempt of an event ended, as end_events.lua records it."""

    event_id: str
    ending: str
    """'delivered', 'retry' or 'failed'."""
    delay: float = 0.0
    error: str = ""

    def arguments(self) -> tuple[str, ...]:
        """The four values end_events.lua reads for this event."""
        return (self.event_id, self.ending, repr(self.delay), self.error)


class EventSender:
    """Delivers one worker's share of the deployment's status events."""

    def __init__(
        self,
        client: AsyncRedis,
        settings: WorkerSettings,
        worker_id: str,
        callbacks: CallbackClient,
    ) -> None:
        self._client = client
        self._settings = settings
        self._keys = keys = settings.keys
        self._held = keys.events_held(worker_id)
        self._callbacks = callbacks
        secret = settings.webhook_secret
        self._signer = Webhook(secret.get_secret_value()) if secret else None
        self._take = worker_script(client, "take_events")
        self._end = worker_script(client, "end_events")
        self._release = worker_script(client, "release")
        self._rng = random.Random()
        self._stop = asyncio.Event()
        self._in_flight = 0
        self._freed = asyncio.Event()
        self._deliveries: set[asyncio.Future[None]] = set()
        self.known: set[str] = set()
        """Events this worker has taken and not yet recorded."""

    async def run(self) -> None:
        """Deliver events until stopped, up to ZQ_EVENT_CONCURRENCY at once."""
        while not self._stop.is_set():
            free = self._settings.event_concurrency - self._in_flight
            if not free:
                self._freed.clear()
                await self._freed.wait()
                continue
            try:
                taken = await self._take(keys=[self._keys.events_ready, self._held], args=[free])
            except Exception as error:  # Redis away or full: look again soon
                log.warning("events: could not take any (%s: %s)", type(error).__name__, error)
                taken = []
            for event_id in taken:
                self.known.add(event_id)
                self._in_flight += 1
                delivery = asyncio.ensure_future(self._deliver(event_id))
                self._deliveries.add(delivery)
                delivery.add_done_callback(self._deliveries.discard)
            if not taken:
                await pause(self._stop, IDLE_POLL)

    def stop(self) -> None:
        """Take no more events (call on the loop)."""
        self._stop.set()

    async def release(self, event_ids: Sequence[str]) -> None:
        """Give held events back to the front of the events' ready list."""
        keys = self._keys
        await self._release(
            keys=[self._held, keys.events_ready, "", ""], args=[0, "", "", *event_ids]
        )

    async def _deliver(self, event_id: str) -> None:
        try:
            ended = await self._attempt(event_id)
            await self._end(
                keys=[self._held, self._keys.events_schedule, self._keys.events_dead,
                      self._keys.stats],
                args=[self._keys.event.prefix, self._settings.record_ttl, *ended.arguments()],
            )  # fmt: skip
        except Exception as error:  # Redis trouble: the event stays held, reconciled later
            log.warning("event %s: not recorded (%s: %s)", event_id, type(error).__name__, error)
        finally:
            self.known.discard(event_id)
            self._in_flight -= 1
            self._freed.set()

    async def _attempt(self, event_id: str) -> Ended:
        """Build (once), sign and POST one event; say how it ended."""
        event: dict[str, str] = await self._client.hgetall(self._keys.event(event_id))  # type: ignore[assignment]
        if not event:
            return Ended(event_id, "delivered")  # expired, or replayed and done: nothing to do
        if self._signer is None:
            log.error("event %s cannot be signed: ZQ_WEBHOOK_SECRET is not set", event_id)
            return Ended(event_id, "failed", error="ZQ_WEBHOOK_SECRET is not set: not signed")
        body = event.get(EventField.BODY) or await self._body(event_id, event)
        headers = self._signed_headers(event_id, body)
        delivery = await self._callbacks.post(event[EventField.URL], body, headers)
        return self._ended(event_id, event, delivery)

    async def _body(self, event_id: str, event: dict[str, str]) -> str:
        """The event's JSON body, written once: a retry sends exactly the same bytes."""
        job_id = event[EventField.JOB_ID]
        record: dict[str, str] = await self._client.hgetall(self._keys.job(job_id))  # type: ignore[assignment]
        created = datetime.fromtimestamp(float(event[EventField.CREATED_AT]), UTC)
        data = JobStatus.from_record(job_id, record).as_dict() if record else {"job_id": job_id}
        body = json.dumps({"type": event[EventField.TYPE], "timestamp": created.isoformat(),
                           "data": data}, separators=(",", ":"), ensure_ascii=False)  # fmt: skip
        key = self._keys.event(event_id)
        if await self._client.hsetnx(key, EventField.BODY, body):
            return body
        return str(await self._client.hget(key, EventField.BODY))

    def _signed_headers(self, event_id: str, body: str) -> dict[str, str]:
        assert self._signer is not None
        now = datetime.now(UTC)
        return {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(event_id, now, body),
        }

    def _ended(self, event_id: str, event: dict[str, str], delivery: Delivery) -> Ended:
        if delivery.delivered:
            return Ended(event_id, "delivered")
        attempts = int(event.get(EventField.ATTEMPTS) or 0) + 1
        if not delivery.retryable or attempts >= self._settings.event_max_attempts:
            log.warning("event %s failed for good after %d attempt(s): %s",
                        event_id, attempts, delivery.reason)  # fmt: skip
            return Ended(event_id, "failed", error=delivery.reason)
        delay = max(
            backoff_delay(attempts, base=1.0, cap=3600.0, rng=self._rng),
            min(delivery.retry_after or 0.0, 3600.0),
        )
        return Ended(event_id, "retry", delay, delivery.reason)
