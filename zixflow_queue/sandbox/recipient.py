"""The recipients' replies, posted from a few background threads when due, retried as Zixflow does.

Request threads only draw and queue a reply: the delay and the POST happen here, so a slow or
absent receiver never holds up the sandbox's answers.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from producer.message import ReplyButtonMessage
from zixflow_queue.sandbox.replies import ReplyPlan, reply_event

THREADS = 4
"""Posts in flight at most: enough for hundreds of replies a second to a local service."""
RETRY_DELAYS = (0.5, 2.0)
"""Seconds before the second and the third try of a failed post: Zixflow retries after 15 s,
40 s and more (then disables the webhook); the sandbox does the same, shortened."""
POST_TIMEOUT = 5.0
TOKEN_HEADER = "X-Zixflow-Token"
USER_AGENT = "zixflow-sandbox"


@dataclass(order=True, frozen=True)
class _Post:
    """One reply to post: when it is due (monotonic seconds), and the same bytes every try."""

    due: float
    order: int
    url: str = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    body: bytes = field(compare=False)
    tries: int = field(default=0, compare=False)


class Recipient:
    """Decides which accepted messages get a reply, and posts each reply once due (thread-safe)."""

    def __init__(self, plan: ReplyPlan) -> None:
        self._changed = threading.Condition()
        self._order = itertools.count()
        self._due: list[_Post] = []
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self._in_flight = 0
        self._counts: Counter[str] = Counter()
        self._last_error = ""
        # A local test double: never reach the receiver through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.plan = plan
        self._rng = random.Random(plan.seed)

    def configure(self, plan: ReplyPlan) -> None:
        """Follow a new plan from now on (replies already drawn still go where they were bound)."""
        with self._changed:
            self.plan = plan
            self._rng = random.Random(plan.seed)

    def accepted(self, message: ReplyButtonMessage) -> None:
        """A message was accepted: draw whether its recipient replies, and when."""
        with self._changed:
            plan = self.plan
            if plan.url is None or self._stopped or self._rng.random() >= plan.rate:
                return
            delay = self._rng.uniform(*plan.delay)
            event = reply_event(message, self._rng, time.time() + delay)
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
            if plan.token:
                headers[TOKEN_HEADER] = plan.token
            body = json.dumps(event).encode()
            self._push(_Post(time.monotonic() + delay, next(self._order), plan.url, headers, body))
            if not self._threads:
                self._start()

    def stats(self) -> dict[str, Any]:
        """Replies posted, failed for good and retried; those waiting (due later or in flight)."""
        with self._changed:
            counts = {name: self._counts[name] for name in ("posted", "failed", "retries")}
            waiting = len(self._due) + self._in_flight
            return {**counts, "waiting": waiting, "last_error": self._last_error}

    def reset(self) -> None:
        """Forget the counts, and the replies not posted yet."""
        with self._changed:
            self._due.clear()
            self._counts.clear()
            self._last_error = ""

    def stop(self) -> None:
        """Post nothing more; the threads end once their post in flight (if any) is over."""
        with self._changed:
            self._stopped = True
            self._due.clear()
            self._changed.notify_all()

    def _push(self, post: _Post) -> None:
        heapq.heappush(self._due, post)
        self._changed.notify()

    def _start(self) -> None:
        for number in range(THREADS):
            thread = threading.Thread(target=self._work, name=f"sandbox-replies-{number}",
                                      daemon=True)  # fmt: skip
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while (post := self._next()) is not None:
            self._settle(post, self._send(post))

    def _next(self) -> _Post | None:
        """The next reply due, once it is; None once stopped."""
        with self._changed:
            while not self._stopped:
                now = time.monotonic()
                if self._due and self._due[0].due <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._due)
                self._changed.wait(self._due[0].due - now if self._due else None)
            return None

    def _send(self, post: _Post) -> str:
        """POST one reply: '' once a 2xx answers it, else why not."""
        request = urllib.request.Request(post.url, post.body, post.headers, method="POST")
        try:
            with self._opener.open(request, timeout=POST_TIMEOUT) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            error.close()  # it holds the answer's connection open
            return f"HTTP {error.code}"
        except (OSError, http.client.HTTPException, ValueError) as error:
            return f"no answer: {type(error).__name__}"
        return ""

    def _settle(self, post: _Post, error: str) -> None:
        """Count a post, or try it again later while it has tries left."""
        with self._changed:
            self._in_flight -= 1
            if not error:
                self._counts["posted"] += 1
                return
            self._last_error = error
            if post.tries < len(RETRY_DELAYS) and not self._stopped:
                self._counts["retries"] += 1
                due = time.monotonic() + RETRY_DELAYS[post.tries]
                self._push(replace(post, due=due, order=next(self._order), tries=post.tries + 1))
            else:
                self._counts["failed"] += 1
