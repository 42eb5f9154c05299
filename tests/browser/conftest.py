"""Real Chromium (Debian's `chromium` and `chromium-driver`) driven by Selenium, against a live
gunicorn serving the test database. Without the browser the tests skip, saying why; under
CI=true they fail instead (.ci/run installs the browser)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.site.world import seed

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored
IN_CI = os.environ.get("CI", "").lower() == "true"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")


def _missing() -> str | None:
    absent = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        absent.append("the selenium package (requirements-dev.txt)")
    return ", ".join(absent) or None


@pytest.fixture(scope="session")
def browser_available():
    missing = _missing()
    if missing:
        if IN_CI:
            pytest.fail(f"browser tests must run in CI, but these are missing: {missing}")
        pytest.skip(f"no browser here ({missing} missing): apt-get install chromium "
                    "chromium-driver to run the browser tests")


@pytest.fixture
def browser(browser_available):
    """browser(javascript=True, width=1280) -> a fresh Chromium with its own profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers, profiles = [], []

    def start(javascript: bool = True, width: int = 1280, height: int = 900):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        profile = tempfile.mkdtemp(prefix="wxy-chromium-")
        profiles.append(profile)
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        if not javascript:
            options.add_experimental_option(
                "prefs", {"profile.managed_default_content_settings.javascript": 2})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def live_site(browser_available, app, client, actors, fake_wechatpay, processes):
    """(base URL of a live gunicorn, the seeded world)."""
    world = seed(app, client, actors, fake_wechatpay)
    base = processes.server(workers=1, threads=4)
    return base, world


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
