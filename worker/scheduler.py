"""Brings scheduled jobs back: due retries, rate-limited jobs, and jobs whose worker died."""

from __future__ import annotations

import logging
import threading

import redis

from producer import keys
from producer.envelope import EnvelopeBuilder
from producer.store import Store
from worker.jobs import worker_script
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

TAKE_LIMIT = 1000
HOLD_SECONDS = 30.0
"""How long taken jobs stay off the schedule: if publishing fails they come due again then."""
REAP_EVERY = 8
"""Ticks between looks for expired claims (claims last a minute or more, so no hurry)."""


class Scheduler:
    """Moves due job ids from the schedule into the queue; runs in each worker."""

    def __init__(self, store: Store, settings: WorkerSettings) -> None:
        self._store = store
        self._settings = settings
        self._envelopes = EnvelopeBuilder(settings.queue)
        self._take = worker_script(store.records, "take_due")
        self._release = worker_script(store.records, "release_due")
        self._reap = worker_script(store.records, "reap")
        self._sweep = worker_script(store.records, "sweep")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zixflow-scheduler", daemon=True)

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread after its current tick."""
        self._stop.set()

    def tick(self, *, reap: bool = True) -> int:
        """Publish every due job id once; returns how many were published."""
        if reap:
            self._rescue()
        published = 0
        while True:
            held, *job_ids = self._take(keys=[keys.SCHEDULE], args=[TAKE_LIMIT, HOLD_SECONDS])
            if not job_ids:
                return published
            envelopes = self._envelopes.build_chunks(job_ids, self._settings.batch_size)
            self._store.broker.lpush(self._settings.queue, *envelopes)
            self._release(keys=[keys.SCHEDULE], args=[held, *job_ids])
            published += len(job_ids)
            if len(job_ids) < TAKE_LIMIT:
                return published

    def _rescue(self) -> None:
        """Reschedule jobs whose claim ran out, and republish jobs no message will deliver."""
        rescued = self._reap(keys=[keys.LEASES, keys.SCHEDULE], args=[TAKE_LIMIT])
        if rescued:
            log.warning("%d job(s) left mid-send by a stopped worker: rescheduled", len(rescued))
        lost = self._sweep(
            keys=[keys.UNFINISHED, keys.SCHEDULE, keys.LEASES],
            args=[self._settings.stale_after, TAKE_LIMIT, keys.PREFIX],
        )
        if lost:
            envelopes = self._envelopes.build_chunks(lost, self._settings.batch_size)
            self._store.broker.lpush(self._settings.queue, *envelopes)
            log.warning("%d job(s) with no delivery pending for %ss: published again",
                        len(lost), self._settings.stale_after)  # fmt: skip

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(self._settings.scheduler_interval):
            try:
                self.tick(reap=ticks % REAP_EVERY == 0)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("scheduler: Redis unreachable (%s); will try again", error)
            ticks += 1
