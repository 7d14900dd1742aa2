"""The web app's screenshot for the docs: ``python -m tests.webapp.screenshot docs/webapp.png``.

Starts a throwaway embedded server, lets three people chat in a 1:1 (with a photo and a file)
and a group, and saves what Alice sees.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from tests.api.server import MessengerProcess
from tests.webapp.browser import Browser, settle


def trail_photo(path: Path) -> None:
    """A small drawn landscape (sky, two mountains, a meadow)."""
    image = Image.new("RGB", (480, 300), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, 250), (150, 70), (300, 250)], fill=(95, 110, 125))
    draw.polygon([(180, 250), (340, 40), (480, 250)], fill=(70, 85, 100))
    draw.polygon([(300, 95), (340, 40), (372, 82)], fill=(245, 245, 250))
    draw.rectangle([(0, 240), (480, 300)], fill=(90, 160, 80))
    image.save(path, quality=90)


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        photo, route = Path(tmp) / "trailhead.jpg", Path(tmp) / "route.pdf"
        trail_photo(photo)
        route.write_bytes(b"%PDF-1.4\n" + bytes(84_000))
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
            bob.find("#attach-input").send_keys(str(photo))
            bob.find("#attach-input").send_keys(str(route))
            alice.wait(lambda: alice.driver.execute_script(
                "return [...document.querySelectorAll('#messages img.photo')]"
                ".some((img) => img.naturalWidth > 0) && document.querySelector('.file')"),
                "the photo and the file")
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
