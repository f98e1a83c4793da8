"""The README's screenshot of the dashboard: a demo-like run, photographed by headless Chromium.

From the repository root: `.venv/bin/python -m docs.screenshot [--phone PATH]`. It needs the
Redis at REDIS_URL (default: redis://127.0.0.1:6379/0, on a queue of its own, removed after)
and /usr/bin/chromium with /usr/bin/chromedriver. It writes docs/dashboard.png and, with
--phone, the overview and dead letters 390 px wide (to check that nothing overflows on a phone).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from producer import Job, Producer
from producer.settings import ProducerSettings
from producer.store import Store
from tests.browser import PHONE, chromium, resize, screenshot
from tests.support import SANDBOX_KEY, WorkerProcess, wait_until, wire_message
from tests.zixflow_queue.test_service import TOKEN, ServiceProcess
from zixflow_queue.namespace import remove_deployment
from zixflow_queue.sandbox import FaultPlan, Sandbox

OUTPUT = Path(__file__).with_name("dashboard.png")
FAULTS = {"error500": 0.05, "throttle429": 0.03, "window": 0.025, "invalid": 0.005}
PHONE_IDS = ("106540352242922", "106540352242923", "118877221100456")
SECONDS = 150
"""How long messages are enqueued for: the chart shows this much of its five minutes."""
WIDTH = 1280


def run(phone: Path | None) -> None:
    """Run workers on a sandbox for a while, then photograph the dashboard."""
    settings = ProducerSettings(
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        queue=f"zq-screenshot-{uuid.uuid4().hex[:6]}",
    )
    store = Store.connect(settings)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        stack.callback(remove_deployment, store, settings)
        sandbox = stack.enter_context(Sandbox(api_key=SANDBOX_KEY))
        sandbox.configure(FaultPlan(latency_ms=60, seed=11, rates=FAULTS, retry_after=0.5))
        env = {
            "REDIS_URL": settings.redis_url, "ZQ_QUEUE": settings.queue,
            "ZIXFLOW_API_KEY": SANDBOX_KEY, "ZIXFLOW_BASE_URL": sandbox.url,
            "ZQ_BACKOFF_BASE": "0.5", "ZQ_BACKOFF_CAP": "4", "ZQ_PHONE_RATE": "12",
            "ZQ_RECIPIENT_INTERVAL": "0", "ZQ_API_TOKENS": TOKEN,
        }  # fmt: skip
        for number in range(2):
            worker = WorkerProcess(
                env, Path(scratch, f"worker-{number}.log"), "-n", f"w{number}@%h"
            )
            stack.callback(worker.kill)
            worker.wait_ready()
        service = ServiceProcess(env, Path(scratch, "service.log"))
        stack.callback(service.stop)
        service.wait_ready()
        traffic(Producer(settings, store))
        photograph(service.url, Path(scratch, "profile"), phone)


def traffic(producer: Producer) -> None:
    """A varying load for SECONDS, some messages for later, and a burst the limits hold back."""
    rng = random.Random(5)
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < SECONDS:
        count = round(14 + 10 * math.sin(elapsed / 9) + rng.random() * 4)
        producer.enqueue_many([message(rng) for _ in range(count)])
        time.sleep(1)  # a second's worth of traffic, as a web app would send it
    later = time.time() + 3600
    producer.enqueue_many([Job(message(rng), send_at=later + n * 60) for n in range(40)])
    producer.enqueue_many([message(rng) for _ in range(400)])


def message(rng: random.Random) -> dict[str, object]:
    """A message to one of many recipients, from one of the deployment's phone ids."""
    return wire_message(to=f"9198{rng.randrange(10**8):08d}", phoneId=rng.choice(PHONE_IDS))


def photograph(url: str, profile: Path, phone: Path | None) -> None:
    """The overview at desktop width; the overview and dead letters at a phone's, if asked."""
    signed_in = url.replace("http://", f"http://operator:{TOKEN}@")
    with chromium(profile) as driver:
        driver.get(f"{signed_in}/dashboard")
        wait_until(lambda: driver.find_elements("css selector", "#rates svg"), what="the chart")
        screenshot(driver, OUTPUT, WIDTH)
        if phone is not None:
            for page, suffix in (("", "overview"), ("/dead", "dead")):
                resize(driver, PHONE)
                driver.get(f"{signed_in}/dashboard{page}")
                path = phone.with_name(f"{phone.stem}-{suffix}.png")
                screenshot(driver, path, PHONE[0], most=2 * PHONE[1])
    print(f"wrote {OUTPUT}")


def main() -> None:
    """Parse the arguments and take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phone", type=Path, help="also write PATH-overview.png, PATH-dead.png")
    run(parser.parse_args().phone)


if __name__ == "__main__":
    main()
