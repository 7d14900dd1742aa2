"""The web app's screenshot for the docs: ``python -m tests.webapp.screenshot docs/webapp.png``.

Starts a throwaway embedded server, lets three people chat in a 1:1 and a group, and saves
what Alice sees.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.api.server import MessengerProcess
from tests.webapp.browser import Browser, settle


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = MessengerProcess(Path(tmp) / "data")
        server.start()
        people = {name: Browser.launch() for name in ("alice", "bob", "carol")}
        alice, bob, carol = people.values()
        try:
            for name, browser in people.items():
                browser.signup(server.url, name, display_name=name.title())
            carol.start_chat("alice")
            carol.send("Are we still on for Saturday?")
            alice.fill("#new-group input[name=name]", "Hiking club")
            alice.fill("#new-group input[name=members]", "bob, carol")
            alice.find("#new-group button").click()
            alice.wait(lambda: alice.text("#chat-title") == "Hiking club", "the group")
            alice.send("Saturday 9am at the trailhead?")
            bob.open_conversation("Hiking club")
            bob.send("I'm in! Bringing snacks")
            alice.start_chat("bob")
            alice.send("Can you pick me up on the way?")
            bob.open_conversation("Alice")
            bob.wait_bodies(["Can you pick me up on the way?"])
            bob.send("Sure, 8:30 at yours")
            alice.wait_bodies(["Can you pick me up on the way?", "Sure, 8:30 at yours"])
            alice.send("Perfect, thanks!")
            settle(2.2)  # the server relays one typing notice per 2 s
            bob.find("#composer-input").send_keys("See you")
            alice.wait(lambda: alice.text("#typing"), "bob typing")
            settle(0.3)
            alice.driver.save_screenshot(str(out))
        finally:
            for browser in people.values():
                browser.quit()
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
