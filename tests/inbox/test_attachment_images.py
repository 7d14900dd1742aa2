"""Cleaning images: any bytes that claim an image type and do not decode are an
``invalid_image`` (422), whatever exception the decoder happens to raise. Pure (files only)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from inbox.attachments.images import InvalidImage, clean_image


def animated_gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(
        out, "GIF", save_all=True, append_images=[Image.new("RGB", (20, 20), "blue")])
    return out.getvalue()


def corrupted(data: bytes, position: int, value: int) -> bytes:
    changed = bytearray(data)
    changed[position] = value
    return bytes(changed)


@pytest.mark.parametrize("data", [
    animated_gif()[:73],  # cut inside the second frame: Pillow raises IndexError
    animated_gif()[:81],  # struct.error
    corrupted(animated_gif(), 74, 1),  # IndexError
    corrupted(animated_gif(), 10, 0),  # no global palette: AssertionError
], ids=["cut-73", "cut-81", "byte-74", "flags"])
def test_a_broken_gif_is_an_invalid_image(tmp_path: Path, data: bytes) -> None:
    source = tmp_path / "in.gif"
    source.write_bytes(data)
    with pytest.raises(InvalidImage):
        clean_image(source, tmp_path / "out.gif", "image/gif", 1_000_000)


def test_a_whole_gif_is_cleaned(tmp_path: Path) -> None:
    source = tmp_path / "in.gif"
    source.write_bytes(animated_gif())
    image = clean_image(source, tmp_path / "out.gif", "image/gif", 1_000_000)
    assert (image.width, image.height) == (20, 20)
    assert image.thumbnail.startswith(b"\xff\xd8\xff")
