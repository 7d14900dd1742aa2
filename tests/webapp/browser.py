"""Headless Debian Chromium driven by selenium through Debian's chromedriver, acting as a
person using the web app: it fills forms, clicks and reads what the page shows.

Nothing downloads a browser: the binaries are ``/usr/bin/chromium`` and
``/usr/bin/chromedriver`` (``apt-get install chromium chromium-driver``). Each ``Browser`` is
its own Chromium with a fresh profile, so each has its own localStorage (its own device).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--window-size=1100,720",
)
WAIT_S = 15.0
T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """One message as the chat shows it."""

    body: str
    mine: bool
    state: str  # "pending", "sent", "read" for one's own; "" for others'
    msg_id: str


@dataclass(eq=False)
class Browser:
    """One Chromium window on the app."""

    driver: webdriver.Chrome
    profile: tempfile.TemporaryDirectory[str]
    logs: list[dict[str, Any]] = field(default_factory=list)
    allow_network_errors: bool = False
    """Set by a test that cuts the network: failed connections are then expected."""

    @classmethod
    def launch(cls) -> Browser:
        profile = tempfile.TemporaryDirectory(prefix="webapp-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile.name}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        return cls(driver, profile)

    def quit(self) -> None:
        self.collect_logs()
        self.driver.quit()
        self.profile.cleanup()

    # -- reading the page -------------------------------------------------------------

    def wait(self, condition: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
        """Poll ``condition`` until it returns something truthy (a stale element retries)."""

        def poll(_: object) -> T | None:
            try:
                return condition()
            except StaleElementReferenceException:
                return None

        found = WebDriverWait(self.driver, timeout_s, poll_frequency=0.05).until(
            poll, f"timed out waiting for {what}")
        return cast(T, found)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        found = self.find_all(css)
        return found[0].text if found else ""

    def status(self) -> str:
        return self.find("#status").get_attribute("data-state") or ""

    def session_id(self) -> str:
        return self.find("#status").get_attribute("data-session") or ""

    def messages(self) -> list[Message]:
        """The open chat's messages, top to bottom."""
        rows = self.driver.execute_script("""
            return [...document.querySelectorAll('#messages li.msg')].map(li => [
              li.querySelector('.body').textContent, li.classList.contains('mine'),
              li.dataset.state || '', li.dataset.msgId || '']);""")
        return [Message(*row) for row in rows]

    def bodies(self) -> list[str]:
        return [m.body for m in self.messages()]

    def conversations(self) -> list[dict[str, str]]:
        """The conversation list: title, last message and unread count, top to bottom."""
        return list(self.driver.execute_script("""
            return [...document.querySelectorAll('#conversations li')].map(li => ({
              cid: li.dataset.cid, unread: li.dataset.unread,
              title: li.querySelector('.title').textContent,
              last: li.querySelector('.last').textContent}));"""))

    def local_storage(self, key: str) -> Any:
        return self.driver.execute_script(
            "return JSON.parse(localStorage.getItem(arguments[0]))", key)

    def device_state(self) -> dict[str, Any]:
        """The logged-in device's stored record: ``{cursor, outbox, app}``."""
        session = self.local_storage("messenger.session")
        state: dict[str, Any] = self.local_storage(
            f"messenger.device.{session['user_id']}.{session['device_id']}")
        return state

    # -- acting -------------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.driver.get(url)

    def fill(self, css: str, value: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(value)

    def signup(self, base_url: str, username: str, password: str = "correct-horse",
               display_name: str | None = None) -> None:
        """Open the app, sign up and log in through the form; wait until online."""
        self.open(f"{base_url}/app/")
        self.wait(lambda: self.find_all("#login-form"), "the login form")
        self.fill("#login-form input[name=username]", username)
        self.fill("#login-form input[name=password]", password)
        self.fill("#login-form input[name=display_name]", display_name or username.title())
        self.find("#signup-button").click()
        self.wait_online()

    def wait_online(self, timeout_s: float = WAIT_S) -> None:
        self.wait_status("online", timeout_s)

    def wait_status(self, state: str, timeout_s: float = WAIT_S) -> None:
        """Wait for the connection state the app shows (online, offline, ...)."""
        self.wait(lambda: self.status() == state, f"the app to be {state}", timeout_s)

    def start_chat(self, username: str) -> None:
        self.fill("#new-chat input[name=username]", username)
        self.find("#new-chat button").click()
        self.wait(lambda: self.find("#chat-title").is_displayed(), "the chat to open")

    def open_conversation(self, title: str) -> None:
        """Click the conversation whose title ends with ``title`` (the list re-renders as
        events arrive, so it is found and clicked in one step)."""
        self.wait(lambda: self.driver.execute_script("""
            const li = [...document.querySelectorAll('#conversations li')]
              .find(li => li.querySelector('.title').textContent.endsWith(arguments[0]));
            if (li) li.click();
            return Boolean(li);""", title), f"conversation {title!r} in the list")
        self.wait(lambda: self.text("#chat-title").endswith(title), f"chat {title!r} open")

    def send(self, text: str) -> None:
        self.fill("#composer-input", text)
        self.find("#send").click()

    def wait_bodies(self, expected: list[str], timeout_s: float = WAIT_S) -> None:
        """Wait until the open chat shows exactly these bodies, in this order."""
        try:
            self.wait(lambda: self.bodies() == expected, f"messages {expected}", timeout_s)
        except Exception as exc:
            raise AssertionError(f"chat shows {self.bodies()}, expected {expected}") from exc

    # -- the console ----------------------------------------------------------------------

    def collect_logs(self) -> list[dict[str, Any]]:
        try:
            self.logs.extend(self.driver.get_log("browser"))  # type: ignore[no-untyped-call]
        except WebDriverException:
            pass
        return self.logs

    def console_errors(self, allow_network: bool = False) -> list[str]:
        """Console errors so far; ``allow_network`` leaves out failed connections (expected
        while a test holds the network down) but never a script error."""
        return [e["message"] for e in self.collect_logs() if e["level"] == "SEVERE"
                and not (allow_network and e.get("source") == "network")]


def settle(seconds: float) -> None:
    """Give the page time to do something it must NOT do (e.g. drop a healthy socket)."""
    time.sleep(seconds)


def app_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "api" / "web"


def block_rest(browser: Browser, blocked: bool = True) -> None:
    """Make every REST request to ``/v1/`` fail in this browser, as if the network were down,
    while the app's own files still load (so the page can be reloaded). Chromium's request
    blocking does not reach WebSockets: a ``CutProxy`` refuses those."""
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd("Network.setBlockedURLs",
                                   {"urls": ["*/v1/*"] if blocked else []})
