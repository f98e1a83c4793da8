"""The demo's app: an HTTP endpoint taking the workers' status events, verified as any app should.

It checks each event with `producer.verify_event` (Standard Webhooks, the shared secret), counts
them by type and keeps the first of each type as received, headers and body, to show.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from producer.events import InvalidEvent, verify_event

PATH = "/events"
INVALID = "invalid"
"""What a POST that fails verification counts as."""


@dataclass(frozen=True)
class Received:
    """One status event as the receiver got it."""

    request_line: str
    headers: list[tuple[str, str]]
    body: str

    def __str__(self) -> str:
        head = [self.request_line, *(f"{name}: {value}" for name, value in self.headers)]
        return "\n".join([*head, "", self.body])


class EventReceiver:
    """Serves PATH on a free port from a background thread: `with EventReceiver(secret) as r`."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._first: dict[str, Received] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> EventReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def environment(self) -> dict[str, str]:
        """What workers (and the service, for replies) need to send their events here."""
        return {"ZQ_WEBHOOK_SECRET": self._secret, "ZQ_CALLBACK_URL": self.url,
                "ZQ_CALLBACK_HOSTS": "any"}  # fmt: skip

    def take(self, received: Received) -> int:
        """Verify and count one event; the HTTP status to answer with."""
        headers = dict(received.headers)
        try:
            event = verify_event(received.body, headers, self._secret)
        except InvalidEvent:
            kind, status = INVALID, 401
        else:
            kind, status = str(event.get("type")), 204
        with self._lock:
            self._counts[kind] += 1
            self._first.setdefault(kind, received)
        return status

    def counts(self) -> Counter[str]:
        """Events received so far, by type (and `invalid`)."""
        with self._lock:
            return self._counts.copy()

    def example(self, *preferred: str) -> Received | None:
        """The first event received of the first of these types that came; else any; else None."""
        with self._lock:
            chosen = [self._first[kind] for kind in preferred if kind in self._first]
            return next(iter(chosen or self._first.values()), None)


def _handler(receiver: EventReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received = Received(self.requestline, list(self.headers.items()),
                                body.decode(errors="replace"))  # fmt: skip
            status = receiver.take(received) if self.path == PATH else 404
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            """Quiet: the demo prints a summary, not a line per event."""

    return Handler
