"""A worker's regular upkeep, on its event loop: heartbeat, due jobs, and jobs left behind.

Every tick renews the heartbeat and moves due jobs from the schedule to the ready list (and
makes sure a wake-up waits for them). Less often it gives back the jobs of workers whose
heartbeat ran out, the jobs this worker holds but lost track of, and, as a last resort, jobs
nothing has moved for ZQ_STALE_AFTER seconds. Redis trouble is logged and ridden out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

from redis.asyncio import Redis as AsyncRedis

from producer.envelope import WAKEUP_TTL_MS
from worker.event_loop import pause
from worker.events import EventSender
from worker.jobs import JobRecords, Wakeups, worker_script
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

LIMIT = 1000
"""Most jobs one upkeep call moves; the next tick takes the rest."""
RECOVER_EVERY = 2.0
RECONCILE_EVERY = 30.0
ORPHAN_AGE = 60.0
"""A held job this worker does not know after this many seconds was taken by a call whose
answer was lost: it is given back."""
SWEEP_EVERY = 60.0


class Maintenance:
    """The upkeep loop of one worker."""

    def __init__(
        self,
        client: AsyncRedis,
        settings: WorkerSettings,
        jobs: JobRecords,
        events: EventSender,
        known: Callable[[], Collection[str]],
        wakeups: Wakeups,
    ) -> None:
        self._client = client
        self._settings = settings
        self._jobs = jobs
        self._events = events
        self._known = known
        self._wakeups = wakeups
        self._keys = settings.keys
        self._tick = worker_script(client, "tick")
        self._recover = worker_script(client, "recover")
        self._sweep = worker_script(client, "sweep")
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Tick until stopped; each chore runs at its own pace."""
        interval = self._settings.scheduler_interval
        chores: list[tuple[Callable[[], Awaitable[None]], float]] = [
            (self.tick, interval),
            (self.recover, RECOVER_EVERY),
            (self.reconcile, RECONCILE_EVERY),
            (self.sweep, SWEEP_EVERY),
        ]
        loop = asyncio.get_running_loop()
        due = [loop.time()] * len(chores)
        while not self._stop.is_set():
            for index, (chore, every) in enumerate(chores):
                if loop.time() >= due[index]:
                    due[index] = loop.time() + every
                    await _ridden_out(chore)
            await pause(self._stop, interval)

    def stop(self) -> None:
        """End the loop after the chore under way (call on the loop)."""
        self._stop.set()

    async def tick(self) -> None:
        """Renew the heartbeat; move due jobs to the ready list."""
        keys = self._keys
        woken, moved = await self._tick(
            keys=[keys.workers, keys.schedule, keys.ready, keys.wakeup, self._wakeups.queue,
                  keys.events_schedule, keys.events_ready],
            args=[self._jobs.worker, self._settings.heartbeat_timeout, LIMIT, WAKEUP_TTL_MS,
                  *self._wakeups.arguments()],
        )  # fmt: skip
        await self._wakeups.publish(woken)
        if moved == LIMIT:
            log.info("%d due jobs moved to the ready list; more are due", moved)

    async def recover(self) -> None:
        """Give back the jobs of workers whose heartbeat ran out."""
        keys = self._keys
        woken, workers, given = await self._recover(
            keys=[keys.workers, keys.ready, keys.wakeup, self._wakeups.queue, keys.events_ready],
            args=[
                keys.held.prefix,
                keys.events_held.prefix,
                LIMIT,
                WAKEUP_TTL_MS,
                *self._wakeups.arguments(),
            ],
        )
        await self._wakeups.publish(woken)
        if workers:
            log.warning("%d worker(s) stopped answering: %d of their jobs given back",
                        workers, given)  # fmt: skip

    async def reconcile(self) -> None:
        """Give back held jobs and events this worker lost track of (a take's answer lost)."""
        jobs = await self._orphans(self._keys.held(self._jobs.worker), set(self._known()))
        if jobs:
            await self._jobs.release(jobs)
        events = await self._orphans(self._keys.events_held(self._jobs.worker), self._events.known)
        if events:
            await self._events.release(events)
        if jobs or events:
            log.warning("%d job(s) and %d event(s) this worker lost track of: given back",
                        len(jobs), len(events))  # fmt: skip

    async def _orphans(self, held: str, known: Collection[str]) -> list[str]:
        """What this worker has held for ORPHAN_AGE seconds (Redis's clock) without knowing it."""
        now, _ = await self._client.time()
        ids = await self._client.zrangebyscore(held, "-inf", now - ORPHAN_AGE)
        return [str(item) for item in ids if item not in known]

    async def sweep(self) -> None:
        """Make ready again the unfinished jobs that nothing moved for ZQ_STALE_AFTER seconds."""
        keys = self._keys
        woken, lost = await self._sweep(
            keys=[keys.unfinished, keys.schedule, keys.ready, keys.wakeup, self._wakeups.queue],
            args=[self._settings.stale_after, LIMIT, keys.job.prefix, WAKEUP_TTL_MS,
                  *self._wakeups.arguments()],
        )  # fmt: skip
        await self._wakeups.publish(woken)
        if lost:
            log.warning("%d job(s) unmoved for %ss: made ready again",
                        lost, self._settings.stale_after)  # fmt: skip


async def _ridden_out(chore: Callable[[], Awaitable[None]]) -> None:
    """Run a chore; no error stops the upkeep (Redis away or out of memory comes back)."""
    try:
        await chore()
    except Exception as error:  # the next tick tries again
        log.warning("upkeep: %s failed (%s: %s); will try again",
                    chore.__name__, type(error).__name__, error)  # fmt: skip
