"""The web app acks what it applied (a live delivery not acked within the server's ack window
is pushed to the device after all): soon after entries arrive, and at once when the tab goes
away, before its half-second batching delay is up."""

from __future__ import annotations

import httpx

from tests.api.server import MessengerProcess, new_account, send
from tests.webapp.conftest import Browsers, username


def acked_cursor(http: httpx.Client, token: str) -> str:
    """How far the server says the browser's device has acked."""
    devices = http.get("/v1/devices", headers={"Authorization": f"Bearer {token}"}).json()
    [web] = [d for d in devices if d["platform"] == "web"]
    return str(web["cur_max_msg_id"])


def test_entries_are_acked_soon_and_when_the_tab_goes(web_server: MessengerProcess,
                                                      browsers: Browsers) -> None:
    browser = browsers.new()
    name = username("acker")
    browser.signup(web_server.url, name)
    token = browser.local_storage("messenger.session")["token"]
    with web_server.client() as http:
        writer = new_account(http, "writer")
        me = http.get("/v1/users", params={"username": name}, headers=writer.headers).json()
        assert send(http, writer, me["user_id"], "one").status_code == 201
        browser.wait(lambda: [c["last"] for c in browser.conversations()] == ["one"], "one")
        cursor = browser.device_state()["cursor"]
        browser.wait(lambda: acked_cursor(http, token) == cursor, f"the ack of {cursor}")

        assert send(http, writer, me["user_id"], "two").status_code == 201
        browser.wait(lambda: [c["last"] for c in browser.conversations()] == ["two"], "two")
        cursor = browser.device_state()["cursor"]
        browser.open("about:blank")  # at once: the batched ack has not gone yet
        browser.wait(lambda: acked_cursor(http, token) == cursor, f"the ack of {cursor}", 3)
