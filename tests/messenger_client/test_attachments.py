"""The client sends and receives photos and files through a real server, on every backend:
upload (from disk and from bytes), a send that carries them, the entry and history that
show them, and downloads (into memory and into a file)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

from PIL import Image

from messenger_client import NotFound, direct_conversation_id
from tests.api.server import MessengerProcess
from tests.messenger_client.support import chat, eventually


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
