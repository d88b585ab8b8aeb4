"""Headless Chromium for the page's browser tests (Debian's chromium + chromedriver)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
    # Every name but the local service resolves to nothing: a page that
    # needed the internet would break here.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip(
            "no Chromium/chromedriver on this machine: `make test` installs Debian's "
            "chromium and chromium-driver with apt-get, which did not succeed here"
        )
    return chromium, driver


@contextmanager
def chromium_session(profile: Path, performance_log: bool = False) -> Iterator[Any]:
    """A headless Chromium driven by Selenium, with its own profile folder."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extra) missing")
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # An explicit driver path: selenium then never tries to download one.
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()


def fresh_page(session: Any, performance_log: bool = False) -> Any:
    """``session`` (one browser shared by a module's tests) as a new one would be: a blank
    page, the window's own viewport, no blocked URLs and, if kept, an empty performance
    log. The page keeps nothing between loads (no cookies, no storage), so a test that
    loads it starts from what a person opening it sees."""
    session.get("about:blank")
    session.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    session.execute_cdp_cmd("Network.enable", {})  # left on: the performance log needs it
    session.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    session.delete_all_cookies()
    if performance_log:
        session.get_log("performance")  # drained: a test reads only its own requests
    return session
