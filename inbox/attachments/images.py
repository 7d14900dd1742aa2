"""Images: decode an upload completely, refuse decompression bombs, write it again without
its metadata (EXIF, GPS, XMP, comments; the orientation applied to the pixels) and make a
JPEG thumbnail.

Blocking and CPU-bound (Pillow): the service runs ``clean_image`` on a worker thread. Files in,
files and bytes out; no other I/O.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from inbox.core.errors import InvalidInput

THUMBNAIL_BOX = (320, 320)
THUMBNAIL_QUALITY = 80
JPEG_QUALITY = 90
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
_KEPT_INFO = ("icc_profile", "transparency", "duration", "loop", "background")
"""What of an image's ``info`` survives: rendering, not metadata."""


class InvalidImage(InvalidInput):
    """Bytes that claim an image type but do not decode (truncated, corrupt): 422."""

    code = "invalid_image"


class ImageTooLarge(InvalidInput):
    """An image of more pixels than allowed (a decompression bomb, or simply too big): 422."""

    code = "image_too_large"


@dataclass(frozen=True, slots=True)
class CleanImage:
    """An image written without metadata: its pixel size and a JPEG thumbnail."""

    width: int
    height: int
    thumbnail: bytes


def clean_image(source: Path, target: Path, media_type: str, max_pixels: int) -> CleanImage:
    """Decode ``source`` (of sniffed ``media_type``) fully and write it to ``target`` in the
    same format without metadata. ``ImageTooLarge`` past ``max_pixels`` (all frames counted)
    before anything is decoded; ``InvalidImage`` when it does not decode."""
    try:
        with Image.open(source, formats=[_FORMATS[media_type]]) as image:
            frames = getattr(image, "n_frames", 1)
            if image.width * image.height * frames > max_pixels:
                raise ImageTooLarge(f"image of {image.width}x{image.height} pixels"
                                    f"{f' x {frames} frames' if frames > 1 else ''}: "
                                    f"at most {max_pixels} pixels")
            image.load()
            if frames > 1:
                _save_animation(image, target)
                size = image.size
                first = image.copy()
            else:
                upright = ImageOps.exif_transpose(image)
                _save_still(upright, target, _FORMATS[media_type])
                size = upright.size
                first = upright
            small = thumbnail(first)
    except ImageTooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image too large to decode: {exc}") from None
    except Exception as exc:
        # Pillow's decoders answer hostile bytes with more than OSError/ValueError
        # (IndexError, struct.error, AssertionError on a cut or corrupt GIF): all are the
        # upload's fault, a 422, never a 500.
        raise InvalidImage(f"not a valid {media_type} image: {exc}") from None
    return CleanImage(size[0], size[1], small)


def _kept_info(image: Image.Image) -> dict[str | tuple[int, int], Any]:
    return {k: image.info[k] for k in _KEPT_INFO if k in image.info}


def _save_still(image: Image.Image, target: Path, fmt: str) -> None:
    clean = image.copy()  # a new image: no info, no EXIF, no text chunks
    clean.info = _kept_info(image)
    options: dict[str, object] = {}
    if fmt == "JPEG":
        options["quality"] = JPEG_QUALITY
        if clean.mode not in ("L", "RGB", "CMYK"):
            clean = clean.convert("RGB")
    elif fmt == "WEBP" and clean.mode not in ("RGB", "RGBA"):
        clean = clean.convert("RGBA")
    if "icc_profile" in clean.info:
        options["icc_profile"] = clean.info["icc_profile"]
    clean.save(target, fmt, **options)


def _save_animation(image: Image.Image, target: Path) -> None:
    fmt = image.format or "GIF"
    image.info = _kept_info(image)
    image.save(target, fmt, save_all=True)


def thumbnail(image: Image.Image) -> bytes:
    """A JPEG at most ``THUMBNAIL_BOX``, transparent parts on white."""
    small = image.copy()
    small.thumbnail(THUMBNAIL_BOX)
    if small.mode in ("RGBA", "LA", "P", "PA"):
        small = small.convert("RGBA")
        canvas = Image.new("RGB", small.size, "white")
        canvas.paste(small, mask=small.getchannel("A"))
        small = canvas
    elif small.mode != "RGB":
        small = small.convert("RGB")
    out = io.BytesIO()
    small.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()
