"""One device per browser profile: a second tab waits while the first one runs the app
(both would write the same cursor and state), and takes over when the first one closes."""

from __future__ import annotations

from tests.api.server import MessengerProcess
from tests.webapp.conftest import Browsers, username


def test_second_tab_waits_and_takes_over(web_server: MessengerProcess,
                                         browsers: Browsers) -> None:
    browser = browsers.new()
    browser.signup(web_server.url, username("tabs"))
    first = browser.driver.current_window_handle
    browser.driver.switch_to.new_window("tab")
    browser.open(f"{web_server.url}/app/")
    browser.wait(lambda: browser.find_all("#other-tab"), "the other-tab notice")
    assert not browser.find_all("#status")
    second = browser.driver.current_window_handle
    browser.driver.switch_to.window(first)
    browser.driver.close()
    browser.driver.switch_to.window(second)
    browser.wait_online()
