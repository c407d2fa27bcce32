"""Helpers of the browser tests: waits, signing in through the real form, screenshots."""
import base64
import os
import time
from pathlib import Path

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WAIT_SECONDS = 10


def wait_for(browser, condition, timeout: float = WAIT_SECONDS):
    return WebDriverWait(browser, timeout).until(condition)


def open_page(browser, path: str) -> None:
    browser.get(browser.live_server_url + path)


def scroll_to(browser, element) -> None:
    """Bring `element` to the middle of the viewport at once: Bootstrap's smooth scrolling
    would otherwise leave it still moving when Selenium clicks."""
    browser.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element,
    )


def submit_and_wait(browser, element) -> None:
    """Click a control that loads a new page and wait until that page has loaded.

    The old page is marked with a window property; the new page has none. (Selenium's
    staleness_of can raise an inspector error while the old document is being torn down.)
    """
    browser.execute_script("window.__cpOldPage = true")
    scroll_to(browser, element)
    element.click()

    def new_page_loaded(b) -> bool:
        try:
            return b.execute_script(
                "return window.__cpOldPage === undefined && document.readyState === 'complete'"
            )
        except WebDriverException:
            return False  # navigating: the old document is gone, the new one not ready

    wait_for(browser, new_page_loaded)


def page_text(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def path_of(browser) -> str:
    return browser.current_url.removeprefix(browser.live_server_url)


def login(browser, username: str, password: str = "demo", *, before_submit=None) -> None:
    """Sign in through the real /accounts/login/ form and wait for the landing page.

    `before_submit(browser)` runs with the form filled in (for a screenshot)."""
    open_page(browser, "/accounts/login/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    if before_submit:
        before_submit(browser)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "main form [type=submit]"))
    assert not path_of(browser).startswith("/accounts/login/"), (
        f"signing in as {username!r} failed: {page_text(browser)[:300]}"
    )


def shot(browser, name: str, *, full_page: bool = True) -> Path | None:
    """Save docs/screenshots/<name>.png when SCREENSHOTS=1 is set; otherwise do nothing.

    full_page captures the whole document through the DevTools protocol, not only the
    viewport, so a long form is seen whole.
    """
    if os.environ.get("SCREENSHOTS") != "1":
        return None
    path = SCREENSHOT_DIR / f"{name}.png"  # a name may hold a folder: "zh-hans/login-1280"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not full_page:
        browser.save_screenshot(str(path))
        return path
    metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content = metrics["cssContentSize"]
    width = metrics["cssLayoutViewport"]["clientWidth"]
    height = min(max(content["height"], metrics["cssLayoutViewport"]["clientHeight"]), 4000)
    image = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png",
        "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    })
    path.write_bytes(base64.b64decode(image["data"]))
    return path


def admin_login(browser, username: str, password: str = "demo", *, next_path: str = "/admin/"):
    """Sign in through the Django admin's own login form and wait for `next_path`."""
    open_page(browser, f"/admin/login/?next={next_path}")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    assert not path_of(browser).startswith("/admin/login/"), (
        f"signing in to the admin as {username!r} failed: {page_text(browser)[:300]}"
    )


def logout(browser) -> None:
    """Sign out through the navbar's (or the admin's) Log out button: a POST, as Django asks."""
    button = browser.find_element(
        By.CSS_SELECTOR, "form[action$='/logout/'] [type=submit], #logout-form [type=submit]",
    )
    submit_and_wait(browser, button)


def allow_downloads(browser, directory: Path) -> None:
    """Save downloads into `directory` without asking (headless Chromium otherwise drops
    them). Browser.setDownloadBehavior covers every tab; older builds only know the Page
    domain's command."""
    params = {"behavior": "allow", "downloadPath": str(directory)}
    try:
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {**params, "eventsEnabled": False})
    except WebDriverException:
        browser.execute_cdp_cmd("Page.setDownloadBehavior", params)


def wait_for_download(directory: Path, suffix: str, timeout: float = WAIT_SECONDS) -> Path:
    """The one finished file ending in `suffix` in `directory` (Chromium writes a
    .crdownload beside it until the download completes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in directory.iterdir() if p.name.endswith(suffix)]
        partial = [p for p in directory.iterdir() if p.name.endswith(".crdownload")]
        if done and not partial:
            assert len(done) == 1, f"more than one download: {done}"
            return done[0]
        time.sleep(0.1)
    raise AssertionError(
        f"no finished *{suffix} download after {timeout}s: {sorted(os.listdir(directory))}",
    )
