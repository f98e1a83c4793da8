"""Debian's headless Chromium, driven by selenium: for the dashboard's tests and screenshot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGUMENTS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--hide-scrollbars", "--lang=en-US",
)  # fmt: skip
DESKTOP = (1280, 900)
PHONE = (390, 844)
"""An iPhone 12 to 15's viewport, in CSS pixels."""


def missing() -> str:
    """Why the browser cannot run here, or '' when it can."""
    absent = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if absent:
        return f"{' and '.join(absent)} not installed (apt-get install chromium chromium-driver)"
    return ""


@contextmanager
def chromium(profile: Path, size: tuple[int, int] = DESKTOP) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile in `profile`, logging its console for tests."""
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        resize(driver, size)
        yield driver
    finally:
        driver.quit()


def resize(driver: webdriver.Chrome, size: tuple[int, int]) -> None:
    """Give the page this viewport (width, height) in CSS pixels, at one device pixel each."""
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def severe(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The console's SEVERE entries (errors) logged since the last call."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def overflow(driver: webdriver.Chrome) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing overflows)."""
    width: int = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


def screenshot(driver: webdriver.Chrome, path: Path, width: int, most: int = 100_000) -> None:
    """A PNG of the page at this width, as long as the page is, up to `most` pixels."""
    height: int = driver.execute_script("return document.documentElement.scrollHeight")
    resize(driver, (width, min(height, most)))
    driver.save_screenshot(str(path))
