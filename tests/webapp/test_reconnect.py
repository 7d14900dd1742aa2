"""Losing the connection: a browser whose network drops catches up with no gap and no
duplicate, its unsent messages survive a reload and go once it is back; a server restart;
heartbeats keep an idle socket open; a device logged out elsewhere stops and asks to log in."""

from __future__ import annotations

from pathlib import Path

from tests.api.server import MessengerProcess, new_account, sync_all
from tests.webapp.browser import Browser, block_rest, settle
from tests.webapp.conftest import Browsers, start_server, username
from tests.webapp.proxy import CutProxy

BACK_ONLINE_S = 30.0  # the backoff ceiling after a few failures, plus the reconnect


def chatting(browsers: Browsers, alice_url: str, bob_url: str, first: str
             ) -> tuple[Browser, Browser]:
    """Alice and Bob signed up (through these URLs), with Alice's ``first`` message open in
    both windows."""
    alice, bob = browsers.new(), browsers.new()
    a_name, b_name = username("alice"), username("bob")
    alice.signup(alice_url, a_name, display_name="Alice")
    bob.signup(bob_url, b_name, display_name="Bob")
    alice.start_chat(b_name)
    alice.send(first)
    bob.open_conversation("Alice")
    bob.wait_bodies([first])
    return alice, bob


def test_offline_browser_catches_up_and_sends_its_outbox(web_server: MessengerProcess,
                                                         browsers: Browsers) -> None:
    with CutProxy(web_server.port) as proxy:
        alice, bob = chatting(browsers, web_server.url, proxy.url, "before")
        bob.allow_network_errors = True  # his connections fail while the network is down

        # The network drops: the socket dies and nothing reaches the server any more.
        block_rest(bob)
        proxy.refused = ("/v1/",)
        proxy.cut()
        bob.wait_status("offline")
        for text in ("away 1", "away 2", "away 3"):
            alice.send(text)
        bob.send("queued 1")
        bob.send("queued 2")
        assert [(m.body, m.state) for m in bob.messages()][-2:] == [
            ("queued 1", "pending"), ("queued 2", "pending")]

        # A reload while offline: the outbox is still there, and still pending.
        bob.driver.refresh()
        bob.wait_status("offline")
        outbox = bob.device_state()["outbox"]
        assert [item["body"] for item in outbox] == ["queued 1", "queued 2"]
        bob.open_conversation("Alice")
        assert [(m.body, m.state) for m in bob.messages()] == [
            ("queued 1", "pending"), ("queued 2", "pending")]

        # Back online: the missed messages arrive once, in order; the queued ones are sent.
        block_rest(bob, blocked=False)
        proxy.refused = ()
        bob.wait_online(BACK_ONLINE_S)
        expected = ["before", "away 1", "away 2", "away 3", "queued 1", "queued 2"]
        bob.wait_bodies(expected)
        alice.wait_bodies(expected)
        bob.wait(lambda: all(m.state in ("", "read") for m in bob.messages()),
                 "bob's messages read by alice (she has the chat open)")
        assert bob.device_state()["outbox"] == []


def test_server_restart(tmp_path: Path, browsers: Browsers) -> None:
    server = start_server(tmp_path, {})
    try:
        alice, bob = chatting(browsers, server.url, server.url, "one")
        for browser in (alice, bob):
            browser.allow_network_errors = True  # refused while the server is down

        server.stop()  # the sockets close with 1012
        bob.wait_status("offline")
        alice.send("two")  # queued until the server is back
        server.start()
        for browser in (alice, bob):
            browser.wait_online(BACK_ONLINE_S)
        bob.wait_bodies(["one", "two"])
        alice.wait_bodies(["one", "two"])
    finally:
        server.stop()


def test_pings_keep_an_idle_socket_open(web_server: MessengerProcess,
                                        browsers: Browsers) -> None:
    """The server closes a socket silent for 3 heartbeat intervals (1 s here) with 4000."""
    browser = browsers.new()
    browser.signup(web_server.url, username("idle"))
    session = browser.session_id()
    settle(4.5)
    assert (browser.status(), browser.session_id()) == ("online", session)


def test_logged_out_device_stops_and_asks_to_log_in(web_server: MessengerProcess,
                                                    browsers: Browsers) -> None:
    """Logged out while offline: the refused upgrade (which a browser cannot see) is told by
    REST; the app stops, asks to log in, and the new device sends the old one's outbox."""
    with CutProxy(web_server.port) as proxy, web_server.client() as http:
        dave = new_account(http, "dave")
        browser = browsers.new()
        browser.allow_network_errors = True  # the refused upgrade and the 401 of the probe
        name = username("carol")
        browser.signup(proxy.url, name)
        browser.start_chat(dave.username)
        proxy.refused = ("/v1/ws",)
        proxy.cut()
        browser.wait_status("offline")
        browser.send("sent by the next device")
        session = browser.local_storage("messenger.session")
        r = http.delete(f"/v1/devices/{session['device_id']}",
                        headers={"Authorization": f"Bearer {session['token']}"})
        assert r.status_code == 204
        proxy.refused = ()

        browser.wait(lambda: browser.find_all("#login-form .notice"), "the login form",
                     BACK_ONLINE_S)
        assert "session ended" in browser.text("#login-form .notice")
        assert browser.find("#login-form input[name=username]").get_attribute("value") == name
        settle(1.5)  # no reconnect attempts: the refused token is not tried again
        assert browser.find_all("#login-form")
        browser.fill("#login-form input[name=password]", "correct-horse")
        browser.find("#login-button").click()
        browser.wait_online()
        assert browser.local_storage("messenger.session")["device_id"] != session["device_id"]
        browser.wait(lambda: [e["body"] for e in sync_all(http, dave)[0]]
                     == ["sent by the next device"], "the queued message to reach dave")
