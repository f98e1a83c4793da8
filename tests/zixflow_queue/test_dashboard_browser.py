"""The dashboard in Debian's headless Chromium: a served process, real workers and the sandbox.

Each answer in detail is in test_dashboard.py; here, what only a browser shows: the page as it
loads (its script, its assets, its console), clicking through it, and its width on a phone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from producer import Producer
from tests.browser import PHONE, chromium, missing, overflow, resize, severe
from tests.support import WorkerProcess, final_status, wait_until, wire_message
from tests.zixflow_queue.test_service import TOKEN, ServiceProcess
from zixflow_queue.sandbox import FaultPlan, Sandbox

UNAVAILABLE = missing()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(UNAVAILABLE), reason=f"no browser: {UNAVAILABLE}"),
]

DOOMED = "919800000701"
"""A recipient whose 24-hour window is closed, the first time: the job fails for good."""
FINE = "919800000702"


@pytest.fixture
def dashboard(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`zixflow-queue serve` on the test's deployment; the dashboard's URL, signed in."""
    service = ServiceProcess({**pipeline_env, "ZQ_API_TOKENS": TOKEN}, tmp_path / "service.log")
    try:
        service.wait_ready()
        yield service.url.replace("http://", f"http://operator:{TOKEN}@") + "/dashboard"
    finally:
        service.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile."""
    with chromium(tmp_path / "profile") as driver:
        yield driver


@pytest.fixture
def outcomes(
    sandbox: Sandbox,
    producer_for: Callable[..., Producer],
    start_worker: Callable[..., WorkerProcess],
) -> tuple[Producer, str]:
    """One job failed for good (a dead letter; its id is returned) and one sent, by a worker."""
    sandbox.configure(FaultPlan(script={DOOMED: ["window"]}))
    producer = producer_for()
    doomed = producer.enqueue(wire_message(to=DOOMED))
    fine = producer.enqueue(wire_message(to=FINE))
    start_worker()
    assert final_status(producer, doomed).state == "failed"
    assert final_status(producer, fine).state == "sent"
    return producer, doomed


def shown(driver: webdriver.Chrome, selector: str) -> WebElement:
    """The element once the page has it."""
    return wait_until(
        lambda: next(iter(driver.find_elements(By.CSS_SELECTOR, selector)), None),
        timeout=10,
        what=selector,
    )


def search(driver: webdriver.Chrome, query: str) -> None:
    """Type the query into the header's search box, as an operator does."""
    box = driver.find_element(By.CSS_SELECTOR, "header input[name=q]")
    box.clear()
    box.send_keys(query, Keys.ENTER)
    wait_until(lambda: driver.title.startswith("Search"), timeout=10, what="the search page")


def test_an_operator_finds_a_failed_job_and_replays_it(
    dashboard: str, browser: webdriver.Chrome, outcomes: tuple[Producer, str]
) -> None:
    producer, doomed = outcomes
    browser.get(dashboard)
    assert browser.title == "Overview · zixflow-queue"
    assert shown(browser, "[data-count=sent]").text == "1"
    assert shown(browser, "[data-count=dead_letters]").text == "1"
    shown(browser, "#rates svg polyline.sent-line")  # the script drew the chart

    browser.find_element(By.LINK_TEXT, "Dead letters 1").click()
    letter = shown(browser, f'[data-letter="{doomed}"]')
    assert "Re-engagement message" in letter.find_element(By.CLASS_NAME, "reason").text

    search(browser, doomed)
    assert "failed" in shown(browser, "#job h2").text
    assert "Re-engagement message" in browser.find_element(By.ID, "job").text
    search(browser, f"+{DOOMED}")
    found = [link.text for link in browser.find_elements(By.CSS_SELECTOR, "table.jobs a.id")]
    assert found == [doomed]

    browser.get(f"{dashboard}/dead")
    shown(browser, f'[data-letter="{doomed}"] button.replay').click()
    assert shown(browser, ".notice").text == "Replayed 1 job."
    assert not browser.find_elements(By.CSS_SELECTOR, f'[data-letter="{doomed}"]')
    status = final_status(producer, doomed)
    assert (status.state, status.replays) == ("sent", 1)
    assert severe(browser) == []


def test_the_overview_follows_the_numbers_without_a_reload(
    dashboard: str,
    browser: webdriver.Chrome,
    producer_for: Callable[..., Producer],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    browser.get(dashboard)
    assert shown(browser, "[data-count=sent]").text == "0"
    producer = producer_for()
    start_worker()
    final_status(producer, producer.enqueue(wire_message(to=FINE)))
    wait_until(
        lambda: browser.find_element(By.CSS_SELECTOR, "[data-count=sent]").text == "1",
        what="the page to show the message sent",
    )
    rates = json.loads(browser.find_element(By.ID, "rates").get_dom_attribute("data-rates"))
    assert sum(slot[1] for slot in rates) > 0  # the chart was drawn again, with the send
    assert severe(browser) == []


def test_nothing_is_wider_than_a_phone(
    dashboard: str, browser: webdriver.Chrome, outcomes: tuple[Producer, str]
) -> None:
    _, doomed = outcomes
    resize(browser, PHONE)
    for page in ("", "/backlog", "/limits", "/dead", f"/search?q={doomed}", f"/search?q={FINE}"):
        browser.get(dashboard + page)
        shown(browser, "main section")
        assert overflow(browser) == 0, page
    assert severe(browser) == []
