"""Two people chatting live in two browsers: the conversation list (title, last message,
unread badge), live delivery, typing, presence, read receipts and deleting."""

from __future__ import annotations

import pytest

from tests.api.server import MessengerProcess
from tests.webapp.browser import Browser
from tests.webapp.conftest import Browsers, username


@pytest.fixture(params=["embedded", "production"])
def server(request: pytest.FixtureRequest) -> MessengerProcess:
    name = "web_server" if request.param == "embedded" else "production_web_server"
    proc: MessengerProcess = request.getfixturevalue(name)
    return proc


def states(browser: Browser) -> list[tuple[str, str]]:
    return [(m.body, m.state) for m in browser.messages()]


def test_two_browsers_chat_live(server: MessengerProcess, browsers: Browsers) -> None:
    alice, bob = browsers.new(), browsers.new()
    a_name, b_name = username("alice"), username("bob")
    alice.signup(server.url, a_name, display_name="Alice")
    bob.signup(server.url, b_name, display_name="Bob")

    alice.start_chat(b_name)
    assert alice.text("#chat-title") == "Bob"
    alice.send("hi Bob")
    alice.wait(lambda: states(alice) == [("hi Bob", "sent")], "alice's message sent")

    # Bob's list shows the new conversation with its last message and an unread badge.
    row = {"cid": "", "title": "Alice", "last": "hi Bob", "unread": "1"}
    bob.wait(lambda: [{**r, "cid": ""} for r in bob.conversations()] == [row],
             f"{row} in bob's list")
    bob.wait(lambda: bob.find_all("#conversations li .dot"), "alice shown online")

    # Opening it reads it: Bob's badge clears and Alice sees her message read.
    bob.open_conversation("Alice")
    bob.wait_bodies(["hi Bob"])
    bob.wait(lambda: bob.conversations()[0]["unread"] == "0", "bob's badge to clear")
    alice.wait(lambda: states(alice) == [("hi Bob", "read")], "alice to see it read")
    assert alice.text("#chat-subtitle") == "online"  # presence: Bob is connected

    # Typing shows on the other side; a reply arrives live and is read at once.
    bob.find("#composer-input").send_keys("hel")
    alice.wait(lambda: alice.text("#typing") == "Bob is typing…", "bob's typing indicator")
    bob.send("hello Alice")
    alice.wait_bodies(["hi Bob", "hello Alice"])
    alice.wait(lambda: alice.text("#typing") == "", "the typing indicator to go with the message")
    bob.wait(lambda: states(bob) == [("hi Bob", ""), ("hello Alice", "read")],
             "bob to see his reply read")
    assert alice.conversations()[0]["last"] == "hello Alice"

    # Delete for everyone: gone on both sides, and the list falls back to the previous one.
    reply = bob.find("#messages li.msg.mine .delete-everyone")
    reply.click()
    alice.wait_bodies(["hi Bob"])
    bob.wait_bodies(["hi Bob"])
    alice.wait(lambda: alice.conversations()[0]["last"] == "You: hi Bob", "last message again")

    # Delete for me: only Bob stops seeing it.
    bob.find("#messages li.msg .delete-me").click()
    bob.wait_bodies([])
    alice.send("still here?")
    bob.wait_bodies(["still here?"])
    alice.wait_bodies(["hi Bob", "still here?"])
