"""Browser fixtures: Debian's headless Chromium driven by Selenium against pytest-django's
live server. Without chromium/chromedriver the tests skip, except in CI where they fail.

Selenium Manager never runs: the driver and the browser binary are both given explicitly.
"""
import os
import shutil
import tempfile

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    """(browser, driver) paths of Debian's chromium; skip without them, fail in CI."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        missing = ", ".join(
            name for name, path in (("chromium", browser), ("chromedriver", driver)) if not path
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests, but this is not on PATH: {missing}")
        pytest.skip(f"not on PATH: {missing}; `make browser-deps` (as root) installs Debian's "
                    "chromium and chromium-driver")
    return browser, driver


@pytest.fixture
def browser(chromium_paths, live_server):
    """A fresh headless Chromium with its own throw-away profile.

    `browser.live_server_url` is the live server's base URL. live_server gives the test
    transactional database semantics, so the server thread sees what the test writes.
    """
    binary, driver_path = chromium_paths
    profile = tempfile.mkdtemp(prefix="cp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.live_server_url = live_server.url
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
