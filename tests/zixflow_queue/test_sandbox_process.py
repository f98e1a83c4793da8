"""The sandbox as its own process and under load: command line, signals, many clients."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support import send, wait_until
from zixflow_queue.sandbox import FaultPlan, Sandbox, SandboxClient
from zixflow_queue.sandbox.__main__ import build_parser, main

LISTENING = re.compile(r"sandbox listening on (http://127\.0\.0\.1:\d+) \(key: cli-key\)\n")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_the_standalone_sandbox_serves_and_exits_cleanly(stop_signal: signal.Signals) -> None:
    command = [sys.executable, "-m", "zixflow_queue.sandbox", "--port", "0", "--api-key", "cli-key",
               "--rate", "throttle429=1", "--retry-after", "3"]  # fmt: skip
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        line = process.stderr.readline()
        listening = LISTENING.fullmatch(line)
        assert listening, line
        url = listening[1]
        with SandboxClient(url) as control, requests.Session() as client:
            wait_until(control.healthy, timeout=10, what="the sandbox")
            answer = send(client, url, authorization="Bearer cli-key")
            assert (answer.status_code, answer.headers["Retry-After"]) == (429, "3")
            assert control.stats()["answers"] == {"throttle429": 1}
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert process.stderr.read() == ""


def test_the_standalone_sandbox_on_a_port_in_use_says_so_and_exits_2() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        command = [sys.executable, "-m", "zixflow_queue.sandbox", "--port", str(port)]
        result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    expected = f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected)


@pytest.mark.parametrize("port", ["65536", "-1", "http"])
def test_the_command_line_refuses_a_port_that_cannot_be(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--port", port])
    assert exit_info.value.code == 2
    assert f"argument --port: must be a whole number from 0 to 65535, got '{port}'" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate", "teapot=0.5"],
        ["--rate", "error500"],
        ["--rate", "error500=often"],
        ["--rate", "error500=0.7", "--rate", "window=0.7"],
    ],
)
def test_the_command_line_refuses_impossible_rates(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert re.search(r"--rate|fault rates", capsys.readouterr().err)


def test_the_command_line_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZIXFLOW_API_KEY", "from-env")
    args = build_parser().parse_args(["--rate", "error500=0.25", "--rate", "drop=0.1"])
    assert (args.host, args.port, args.api_key) == ("127.0.0.1", 8088, "from-env")
    assert (args.retry_after, args.slow_seconds, args.seed) == (1.0, 5.0, None)
    assert dict(args.rate) == {"error500": 0.25, "drop": 0.1}


def test_the_sandbox_loads_no_worker_code_and_no_celery() -> None:
    code = "import json, sys, zixflow_queue.sandbox; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)  # fmt: skip
    loaded = set(json.loads(result.stdout))
    assert "zixflow_queue.sandbox.server" in loaded
    roots = {name.partition(".")[0] for name in loaded}
    assert not roots & {"worker", "celery", "kombu"}, sorted(roots)


def test_many_clients_are_served_at_once(sandbox: Sandbox) -> None:
    def statuses(_: int) -> list[int]:
        with requests.Session() as client:
            return [send(client, sandbox.url).status_code for _ in range(5)]

    with ThreadPoolExecutor(max_workers=200) as pool:
        answered = [status for batch in pool.map(statuses, range(200)) for status in batch]
    assert answered == [200] * 1000
    assert sandbox.stats()["requests"] == 1000


def test_a_script_is_played_exactly_once_under_concurrency(sandbox: Sandbox) -> None:
    sandbox.configure(FaultPlan(script={"919876543210": ["error500"] * 50}))

    def status(_: int) -> int:
        with requests.Session() as client:
            return send(client, sandbox.url).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = Counter(pool.map(status, range(200)))
    assert statuses == {500: 50, 200: 150}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/api/v1/campaign/whatsapp/send", 404), ("PUT", "/_sandbox/reset", 404),
     ("PUT", "/_sandbox/faults", 400)],
)  # fmt: skip
def test_an_unread_body_never_garbles_the_next_request(
    sandbox: Sandbox, method: str, path: str, status: int
) -> None:
    with requests.Session() as client:
        answer = client.request(method, sandbox.url + path, data=b'{"x": 1}' * 100, timeout=10)
        assert answer.status_code == status
        assert send(client, sandbox.url).status_code == 200  # same keep-alive connection


def test_requests_since_must_be_an_index(sandbox: Sandbox) -> None:
    answer = requests.get(sandbox.url + "/_sandbox/requests?since=-1", timeout=10)
    assert answer.status_code == 400


def test_a_sandbox_never_started_stops_at_once() -> None:
    never_started = Sandbox()
    never_started.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(never_started.url + "/_sandbox/health", timeout=2)
