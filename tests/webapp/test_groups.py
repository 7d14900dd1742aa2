"""A group of three in three browsers: create it with two members, add one, everyone sees
every message once, and leaving takes the group off the leaver's list."""

from __future__ import annotations

from tests.api.server import MessengerProcess
from tests.webapp.browser import Browser
from tests.webapp.conftest import Browsers, username


def members(browser: Browser) -> list[str]:
    return [li.text for li in browser.find_all("#members li")]


def test_group_of_three(web_server: MessengerProcess, browsers: Browsers) -> None:
    alice, bob, carol = browsers.new(), browsers.new(), browsers.new()
    names = {b: username(p) for b, p in ((alice, "alice"), (bob, "bob"), (carol, "carol"))}
    for browser, display in ((alice, "Alice"), (bob, "Bob"), (carol, "Carol")):
        browser.signup(web_server.url, names[browser], display_name=display)

    alice.fill("#new-group input[name=name]", "Hiking")
    alice.fill("#new-group input[name=members]", names[bob])
    alice.find("#new-group button").click()
    alice.wait(lambda: alice.text("#chat-title") == "Hiking", "the group open")
    alice.wait(lambda: alice.text("#chat-subtitle") == "2 members", "two members")
    alice.find("#members-toggle").click()
    alice.fill("#add-member input[name=username]", names[carol])
    alice.find("#add-member button").click()
    alice.wait(lambda: members(alice) == ["Alice (owner) (you)", "Bob", "Carol"], "3 members")

    alice.send("Saturday 9am?")
    for browser in (bob, carol):
        browser.open_conversation("Hiking")
        browser.wait_bodies(["Saturday 9am?"])
    bob.send("I'm in")
    carol.send("me too")
    everyone = ["Saturday 9am?", "I'm in", "me too"]
    for browser in (alice, bob, carol):
        browser.wait_bodies(everyone)
    senders = [el.text for el in alice.find_all("#messages li.msg .sender")]
    assert senders == ["Bob", "Carol"]  # others' names shown in groups
    assert [m.state for m in alice.messages() if m.mine] == ["sent"]  # no receipts in groups
    assert alice.conversations()[0]["last"] == "Carol: me too"

    carol.find("#members-toggle").click()
    carol.find("#leave-group").click()
    carol.wait(lambda: carol.conversations() == [], "the group gone from carol's list")
    assert not carol.find("#chat-title").is_displayed()
    alice.wait(lambda: members(alice) == ["Alice (owner) (you)", "Bob"], "carol gone")
    bob.send("bye Carol")
    alice.wait_bodies([*everyone, "bye Carol"])

    # A queued message the server refuses for good (Carol left) is dropped and reported.
    group_id = alice.conversations()[0]["cid"]
    key = carol.driver.execute_script("""
        const s = JSON.parse(localStorage.getItem('messenger.session'));
        const key = `messenger.device.${s.user_id}.${s.device_id}`;
        const device = JSON.parse(localStorage.getItem(key));
        device.outbox.push({client_msg_id: 'late-1', body: 'too late',
                            conversation_id: arguments[0], to_group: arguments[0].slice(2)});
        localStorage.setItem(key, JSON.stringify(device));
        return key;""", group_id)
    carol.driver.refresh()
    carol.wait(lambda: "Not sent: “too late”" in carol.text("#sidebar-error"), "the refusal")
    assert carol.local_storage(key)["outbox"] == []
