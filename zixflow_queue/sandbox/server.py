"""A local stand-in for Zixflow's send endpoint, fast enough to load-test against."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from producer.message import parse_message
from zixflow_queue.sandbox.faults import FAULTS, OK, FaultPlan, Faults, failure_body, success_body
from zixflow_queue.sandbox.recipient import Recipient
from zixflow_queue.sandbox.replies import ReplyPlan

SEND_PATH = "/api/v1/campaign/whatsapp/message/send"
NO_TOKEN = b'{"status":false,"message":"No token provided"}'
NOT_FOUND = b'{"status":false,"message":"Not found"}'
REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class CannotListen(Exception):
    """The sandbox's address cannot be bound; the message says which and why, in one line."""


class SandboxServer(ThreadingHTTPServer):
    """The HTTP server, holding the key, the fault plan and the log of what arrived."""

    daemon_threads = True
    request_queue_size = 4096  # the kernel caps it at net.core.somaxconn
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], api_key: str, plan: FaultPlan, replies: ReplyPlan
    ) -> None:
        # Set before binding: a failed bind calls server_close(), which needs them.
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.recipient = Recipient(replies)
        self.expected_auth = f"Bearer {api_key}"
        self.faults = Faults(plan)
        self.log: list[dict[str, Any]] = []
        super().__init__(address, _Handler)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Serve a connection in a thread of its own, remembering it until it closes."""
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        """Close a connection and forget it."""
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Stop listening, post no more replies and hang up on every open connection."""
        super().server_close()
        self.recipient.stop()
        # Keep-alive connections would otherwise go on being answered after a stop.
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Report handler crashes, but not clients that hung up: under chaos that is routine."""
        if not isinstance(sys.exception(), OSError):
            super().handle_error(request, client_address)

    def configure(self, plan: FaultPlan) -> None:
        """Replace the fault plan (its random draws and scripts start afresh)."""
        self.faults = Faults(plan)

    def reset(self) -> None:
        """Forget what was received, what was scripted and the replies not posted yet; keep
        latency, rates and the reply plan."""
        self.log.clear()
        self.configure(replace(self.faults.plan, script={}))
        self.recipient.reset()

    def stats(self) -> dict[str, Any]:
        """Totals by answer, distinct jobs, jobs answered `ok` more than once, and replies."""
        log = list(self.log)
        sent = Counter(entry["job_id"] for entry in log if entry["answer"] == OK)
        sent.pop(None, None)
        return {
            "requests": len(log),
            "answers": dict(Counter(entry["answer"] for entry in log)),
            "jobs": len({entry["job_id"] for entry in log} - {None}),
            "sent_jobs": len(sent),
            "duplicates": sum(1 for count in sent.values() if count > 1),
            "replies": self.recipient.stats(),
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxServer
    # One write per answer, sent at once: headers and body in separate segments would meet
    # the client's delayed ACK and stall every keep-alive request for 40 ms.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a line per request would cost more than the request."""

    def do_POST(self) -> None:
        body = self._read_body()  # even when unused: what is left would garble the next request
        if self.path == SEND_PATH:
            self._send_message(body)
        elif self.path == "/_sandbox/reset":
            self.server.reset()
            self._reply(200, b'{"reset":true}')
        else:
            self._reply(404, NOT_FOUND)

    def do_PUT(self) -> None:
        body = self._read_body()
        try:
            if self.path == "/_sandbox/faults":
                plan = FaultPlan.from_dict(json.loads(body))
                self.server.configure(plan)
                shown = plan.to_dict()
            elif self.path == "/_sandbox/replies":
                replies = ReplyPlan.from_dict(json.loads(body))
                self.server.recipient.configure(replies)
                shown = replies.shown()
            else:
                self._reply(404, NOT_FOUND)
                return
        except (ValueError, TypeError, RecursionError) as error:
            self._reply(400, json.dumps({"error": str(error)}).encode())
            return
        self._reply(200, json.dumps(shown).encode())

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_sandbox/requests":
            self._reply_log(parse_qs(url.query).get("since", ["0"])[0])
        elif url.path == "/_sandbox/stats":
            self._reply(200, json.dumps(self.server.stats()).encode())
        elif url.path == "/_sandbox/faults":
            self._reply(200, json.dumps(self.server.faults.plan.to_dict()).encode())
        elif url.path == "/_sandbox/replies":
            self._reply(200, json.dumps(self.server.recipient.plan.shown()).encode())
        elif url.path == "/_sandbox/health":
            self._reply(200, b'{"ok":true}')
        else:
            self._reply(404, NOT_FOUND)

    def _reply_log(self, since: str) -> None:
        if not since.isdigit():
            self._reply(400, b'{"error":"since must be a whole number"}')
            return
        self._reply(200, json.dumps(self.server.log[int(since) :]).encode())

    def _send_message(self, body: bytes) -> None:
        entry: dict[str, Any] = {"t": time.time(), "job_id": self.headers.get("X-Request-ID")}
        faults = self.server.faults
        if faults.plan.latency_ms:
            time.sleep(faults.plan.latency_ms / 1000)
        status, answer, reply = self._answer(body, faults, entry)
        entry["answer"] = answer
        self.server.log.append(entry)
        if answer == "drop":
            self.close_connection = True  # hang up without a word
            return
        retry_after = b"Retry-After: %g\r\n" % faults.plan.retry_after if status == 429 else b""
        self._reply(status, reply, retry_after)

    def _answer(self, body: bytes, faults: Faults, entry: dict[str, Any]) -> tuple[int, str, bytes]:
        auth = self.headers.get("Authorization")
        entry["authorized"] = auth == self.server.expected_auth
        if not auth:
            return 401, "unauthorised", NO_TOKEN
        if not entry["authorized"]:
            status, reply = failure_body("unauthorised")
            return status, "unauthorised", reply
        try:
            message = parse_message(json.loads(body))
        except (ValueError, RecursionError):  # not JSON or UTF-8, too deep, or not a message
            return (400, "invalid", failure_body("invalid")[1])
        entry.update(to=message.to, phoneId=message.phone_id,
                     submissionStatus=message.submission_status)  # fmt: skip
        kind = faults.pick(message.to)
        if kind in FAULTS:
            status, reply = failure_body(kind)
            return status, kind, reply
        if kind == "slow":
            time.sleep(faults.plan.slow_seconds)
        if kind != "drop":  # answered as sent: its recipient may reply
            self.server.recipient.accepted(message)
        return 200, kind, success_body(message.submission_status)

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: bytes, extra_headers: bytes = b"") -> None:
        # Written by hand: send_response and send_header cost more than the rest of a request.
        self.wfile.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (status, REASONS[status], len(body), extra_headers, body)
        )


class Sandbox:
    """The sandbox serving from a background thread: `with Sandbox() as sandbox: sandbox.url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sandbox-key",
        faults: FaultPlan | None = None,
        replies: ReplyPlan | None = None,
    ) -> None:
        self.server = SandboxServer((host, port), api_key, faults or FaultPlan(),
                                    replies or ReplyPlan())  # fmt: skip
        self.url = f"http://{host}:{self.server.server_address[1]}"
        # A short poll, so that stop() returns at once rather than after half a second.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self.server.shutdown()
        self.server.server_close()

    def configure(self, plan: FaultPlan) -> None:
        """Replace the fault plan."""
        self.server.configure(plan)

    def configure_replies(self, plan: ReplyPlan) -> None:
        """Replace the reply plan."""
        self.server.recipient.configure(plan)

    def reset(self) -> None:
        """Forget what was received and what was scripted."""
        self.server.reset()

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Requests received so far (from index `since`), in order of arrival."""
        return self.server.log[since:]

    def stats(self) -> dict[str, Any]:
        """Totals of what was received and answered."""
        return self.server.stats()


def serve(
    host: str,
    port: int,
    api_key: str,
    plan: FaultPlan,
    key_source: str | None = None,
    replies: ReplyPlan | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; `key_source` names where a key not to print came from.

    Raises CannotListen when the address cannot be bound (a port in use, an unknown host).
    """
    replies = replies or ReplyPlan()
    try:
        server = SandboxServer((host, port), api_key, plan, replies)
    except OSError as error:
        reason = error.strerror or str(error)  # "Address already in use"
        why = reason[:1].lower() + reason[1:]
        raise CannotListen(f"cannot listen on {host}:{port}: {why}") from error
    url = f"http://{host}:{server.server_address[1]}"

    def stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    shown = f"from {key_source}" if key_source else api_key
    print(f"sandbox listening on {url} (key: {shown})", file=sys.stderr, flush=True)
    if replies.url:
        low, high = replies.delay
        print(f"sandbox replying to {replies.url} for {replies.rate:.0%} of the messages it "
              f"accepts, {low:g}-{high:g} s after", file=sys.stderr, flush=True)  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.server_close()
