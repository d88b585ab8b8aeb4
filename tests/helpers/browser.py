"""Headless Chromium for the page's browser tests (Debian's chromium + chromedriver)."""

from __future__ import annotations

import shutil

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
