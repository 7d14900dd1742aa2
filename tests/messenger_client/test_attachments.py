"""The client sends and receives photos and files through a real server, on every backend:
upload (from disk and from bytes), a send that carries them (over REST, and through the
outbox and the WebSocket like any send, also after the client and the server restart), the
entry and history that show them, and downloads (into memory and into a file)."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

import pytest
from PIL import Image

from messenger_client import Entry, NotFound, SendFailed, direct_conversation_id
from tests.api.server import MessengerProcess
from tests.messenger_client.support import Inbox, chat, eventually, open_client, signup


async def test_photos_and_files_go_both_ways(server: MessengerProcess, tmp_path: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (640, 480), "blue").save(picture, "PNG")
    document = tmp_path / "notes.txt"
    document.write_text("bring snacks\n" * 1000)
    async with chat(tmp_path, server.url) as c:
        photo = await c.alice.api.upload(picture.getvalue(), "beach.png")
        file = await c.alice.api.upload(document)
        assert photo.is_image and (photo.width, photo.height) == (640, 480)
        assert photo.thumbnail_id is not None
        assert file.name == "notes.txt" and file.content_type.startswith("text/plain")
        await c.alice.api.send(uuid.uuid4().hex, "", to_user=c.b,
                               attachments=[photo.attachment_id, file.attachment_id])

        def got_it() -> bool:
            return any(e.attachments for e in c.bob_inbox.entries)

        await eventually(got_it)
        [entry] = [e for e in c.bob_inbox.entries if e.attachments]
        assert [a.attachment_id for a in entry.attachments] == [photo.attachment_id,
                                                                file.attachment_id]
        assert entry.body == "" and entry.attachments[0].thumbnail_id == photo.thumbnail_id
        shown = Image.open(io.BytesIO(await c.bob.api.download(photo.attachment_id)))
        assert shown.size == (640, 480)
        assert thumb_size(await c.bob.api.download(photo.thumbnail_id)) <= (320, 240)
        target = tmp_path / "saved.txt"
        assert await c.bob.api.download(file.attachment_id, target) == b""
        assert target.read_text() == document.read_text()
        assert (await c.bob.api.attachment(file.attachment_id)).size == file.size
        [last] = await c.bob.api.history(direct_conversation_id(c.a, c.b))
        assert last.attachments == entry.attachments
        try:
            await c.bob.api.send(uuid.uuid4().hex, "", to_user=c.a,
                                 attachments=[file.attachment_id])  # not his upload
        except NotFound:
            pass
        else:
            raise AssertionError("a send naming another's upload was stored")


def thumb_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, "PNG")
    return out.getvalue()


def carried(entries: list[Entry]) -> list[tuple[int, str, list[int]]]:
    """(msg_id, body, attachment ids) of the ``message`` entries."""
    return [(e.msg_id, e.body or "", [a.attachment_id for a in e.attachments])
            for e in entries if e.kind == "message"]


async def test_sends_with_attachments_go_through_the_outbox_and_the_socket(
        server: MessengerProcess, tmp_path: Path) -> None:
    async with chat(tmp_path, server.url) as c:
        photo = await c.alice.api.upload(png(), "leaf.png")
        notes = await c.alice.api.upload(b"bring snacks", "notes.txt")
        key = uuid.uuid4().hex  # stored over REST, as if the answer to that send was lost
        first = await c.alice.api.send(key, "", to_user=c.b, attachments=[notes.attachment_id])
        again = await c.alice.send("", to_user=c.b, client_msg_id=key,
                                   attachments=[notes.attachment_id])
        assert again.msg_id == first.msg_id  # the retry through the outbox stored nothing
        both = await c.alice.send("look", to_user=c.b,
                                  attachments=[photo.attachment_id, notes.attachment_id])
        with pytest.raises(NotFound):  # not Bob's upload: refused for good, dropped
            await c.bob.send("", to_user=c.a, attachments=[photo.attachment_id])
        assert c.bob.pending() == []
        await c.bob_inbox.wait(lambda box: len(box.bodies(c.a)) == 2
                               and bool(box.of(SendFailed)))
        assert carried(c.bob_inbox.entries) == [
            (first.msg_id, "", [notes.attachment_id]),
            (both.msg_id, "look", [photo.attachment_id, notes.attachment_id])]
        [shown] = [e for e in c.bob_inbox.entries if e.msg_id == both.msg_id]
        assert shown.attachments[0].thumbnail_id == photo.thumbnail_id
        assert await c.bob.api.download(notes.attachment_id) == b"bring snacks"


async def test_a_send_with_an_attachment_queued_offline_goes_once_after_restarts(
        own_server: MessengerProcess, tmp_path: Path) -> None:
    """Uploaded while online; queued while the server is down (killed), by a client that
    then stops; delivered, once and with its attachment, by the next run once the server is
    back."""
    alice_path = await signup(own_server.url, tmp_path, "a")
    bob_path = await signup(own_server.url, tmp_path, "b")
    async with open_client(bob_path) as bob:
        b = bob.session.user_id
        async with open_client(alice_path) as alice:
            photo = await alice.api.upload(png(), "offline.png")
            await alice.send("before", to_user=b)
            own_server.kill()
            await eventually(lambda: not alice.connected)
            queued = alice.enqueue("", to_user=b, attachments=[photo.attachment_id])
            alice.enqueue("after", to_user=b)
        async with open_client(alice_path) as restarted:
            assert [(i.client_msg_id, i.attachments) for i in restarted.pending()][0] == (
                queued.client_msg_id, (photo.attachment_id,))
            await asyncio.to_thread(own_server.start)
            receipt = await restarted.wait_sent(queued.client_msg_id)
            await restarted.flush()
            assert restarted.pending() == []
        inbox = Inbox(bob)
        await inbox.wait(lambda box: len(box.bodies()) == 3)
        assert [(body, ids) for _, body, ids in carried(inbox.entries)] == [
            ("before", []), ("", [photo.attachment_id]), ("after", [])]
        assert carried(inbox.entries)[1][0] == receipt.msg_id
        stored = await bob.api.sync(0, 1000)  # the server stored it once
        assert carried(stored.entries) == carried(inbox.entries)
        assert thumb_size(await bob.api.download(photo.attachment_id)) == (64, 48)
        await inbox.stop()
