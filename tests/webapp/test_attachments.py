"""Photos and files in the web app: one browser sends a photo and a file through the attach
button; the other sees the thumbnail (fetched with the token, shown from a ``blob:`` URL),
opens the full image, downloads the file with the same bytes, and the list's previews. A
failed upload queues nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from tests.api.server import MessengerProcess
from tests.webapp.browser import Browser
from tests.webapp.conftest import Browsers, username

PHOTO_SIZE = (640, 400)  # the thumbnail is at most 320x320: 320x200
FILE_BYTES = b"%PDF-1.4\n" + bytes(range(256)) * 12


def attach(browser: Browser, path: Path) -> None:
    """Choose ``path`` in the chat's file picker (it sends at once)."""
    browser.find("#attach-input").send_keys(str(path))


def shown_attachments(browser: Browser) -> list[dict[str, Any]]:
    """The open chat's attachments, top to bottom: photos with the pixel width of what they
    show and their URL, files with their label."""
    return list(browser.driver.execute_script("""
        return [...document.querySelectorAll('#messages .attachments > *')].map(el =>
          el.tagName === 'IMG' ? {photo: el.alt, width: el.naturalWidth, src: el.src}
                               : {file: el.textContent});"""))


def record_revoked(browser: Browser) -> None:
    """From now on, note in ``window.revoked`` every object URL the page revokes."""
    browser.driver.execute_script("""
        const revoke = URL.revokeObjectURL;
        window.revoked = [];
        URL.revokeObjectURL = (url) => { window.revoked.push(url); revoke(url); };""")


def last_previews(browser: Browser) -> list[str]:
    return [c["last"] for c in browser.conversations()]


def test_photo_and_file_between_two_browsers(web_server: MessengerProcess, browsers: Browsers,
                                             tmp_path: Path) -> None:
    photo, report = tmp_path / "beach.png", tmp_path / "report.pdf"
    Image.new("RGB", PHOTO_SIZE, (30, 120, 200)).save(photo)
    report.write_bytes(FILE_BYTES)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    alice, bob = browsers.new(), browsers.new()
    a_name, b_name = username("alice"), username("bob")
    alice.signup(web_server.url, a_name, display_name="Alice")
    bob.signup(web_server.url, b_name, display_name="Bob")

    alice.start_chat(b_name)
    attach(alice, photo)
    bob.wait(lambda: last_previews(bob) == ["Photo"], "bob's list to show Photo")
    attach(alice, report)
    bob.wait(lambda: last_previews(bob) == ["File: report.pdf"], "bob's list to name the file")
    alice.wait(lambda: [m.state for m in alice.messages()] == ["sent", "sent"], "both sent")
    assert alice.text("#chat-notice") == ""

    bob.open_conversation("Alice")
    bob.wait(lambda: [{k: v for k, v in a.items() if k != "src"} for a in shown_attachments(bob)]
             == [{"photo": "beach.png", "width": 320}, {"file": "report.pdf (3.1 KB)"}],
             "the thumbnail drawn and the file named")
    thumb_url = shown_attachments(bob)[0]["src"]
    assert thumb_url.startswith("blob:")

    # A click opens the full image; a click on it closes it.
    bob.find("#messages img.photo").click()
    bob.wait(lambda: bob.driver.execute_script(
        "return document.getElementById('viewer-image').naturalWidth") == PHOTO_SIZE[0],
        "the full image")
    bob.find("#viewer").click()
    bob.wait(lambda: not bob.find("#viewer").is_displayed(), "the viewer to close")

    # The file downloads under its name with the bytes Alice sent.
    bob.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
    bob.find("#messages button.file").click()
    saved = downloads / "report.pdf"
    bob.wait(lambda: saved.exists() and saved.read_bytes() == FILE_BYTES, "the download")

    # Leaving the chat frees the object URLs of what it showed.
    record_revoked(bob)
    bob.start_chat(b_name)  # notes to self: Alice's messages leave the view
    bob.wait(lambda: thumb_url in bob.driver.execute_script("return window.revoked"),
             "the thumbnail's URL to be revoked")


def test_failed_upload_queues_nothing(web_server: MessengerProcess, browsers: Browsers,
                                      tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    carol = browsers.new()
    carol.allow_network_errors = True  # Chromium logs the refused upload (422); scripts: none
    name = username("carol")
    carol.signup(web_server.url, name)
    carol.start_chat(name)
    carol.fill("#composer-input", "caption")
    attach(carol, empty)
    carol.wait(lambda: carol.text("#chat-notice").startswith("Not sent: "), "the error")
    assert "empty" in carol.text("#chat-notice")
    assert carol.find("#composer-input").get_attribute("value") == "caption"  # kept
    carol.send("text only")  # the next send goes alone: nothing else was queued
    carol.wait(lambda: [(m.body, m.state) for m in carol.messages()] == [("text only", "sent")],
               "the text alone, sent")
    assert carol.device_state()["outbox"] == []
