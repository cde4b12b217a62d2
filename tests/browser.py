"""A real headless Chromium for the HTML report's tests: Debian's chromium and chromedriver.

Selenium is pointed at /usr/bin/chromedriver explicitly, so its Selenium Manager never
looks for (or downloads) a driver or a browser.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 800


def chromium_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            return f"no {path} (apt-get install {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "no selenium (pip install -e '.[dev]')"
    return None


def require_chromium() -> None:
    """Skip the calling test when the browser cannot run here; in CI (CI set), fail it."""
    import pytest

    reason = chromium_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"chromium is required in CI (.ci/run installs it): {reason}")
    pytest.skip(f"chromium unavailable: {reason}")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium whose viewport is WIDTH × HEIGHT, logging its console and network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        # Nothing of its own on the network either: no updates, no sync, no extensions.
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
    ):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    # Report alerts instead of failing every later command on them: the test asks.
    options.set_capability("unhandledPromptBehavior", "ignore")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()
