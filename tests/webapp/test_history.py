"""History scroll-back: the chat opens on the newest page and loads older pages with
``before=`` as the user scrolls up, until the first message, each message once."""

from __future__ import annotations

from tests.api.server import MessengerProcess, new_account, send
from tests.webapp.conftest import Browsers, username

COUNT = 120  # the app loads 50 a page: three pages


def test_scroll_back_through_history(web_server: MessengerProcess, browsers: Browsers) -> None:
    browser = browsers.new()
    name = username("reader")
    browser.signup(web_server.url, name)
    with web_server.client() as http:
        writer = new_account(http, "writer")
        me = http.get("/v1/users", params={"username": name}, headers=writer.headers).json()
        for i in range(COUNT):
            assert send(http, writer, me["user_id"], f"m{i:03d}").status_code == 201
    expected = [f"m{i:03d}" for i in range(COUNT)]
    browser.open_conversation(writer.username)  # no display name: the username
    browser.wait(lambda: browser.bodies() == expected[-50:], "the newest page")
    assert browser.find_all("#load-older")
    for page in (2, 3):
        browser.driver.execute_script("document.getElementById('messages').scrollTop = 0")
        browser.wait_bodies(expected[-50 * page:])
    browser.driver.execute_script("document.getElementById('messages').scrollTop = 0")
    browser.wait(lambda: not browser.find_all("#load-older"), "the start of the chat")
    assert browser.bodies() == expected
    assert browser.conversations()[0]["unread"] == "0"  # opened and read
