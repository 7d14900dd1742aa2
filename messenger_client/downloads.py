"""Where ``messenger download`` puts an attachment, and putting it there whole.

The file name comes from the server (the uploader chose it), so it is used only as a plain
name inside the chosen directory: never a path, never ``.``/``..``, never a hidden dot-file
that shells skip. A file the user did not name is never replaced; the bytes go to a temporary
file beside the target first, so an interrupted download leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from messenger_client.errors import MessengerError
from messenger_client.rest import RestApi


class TargetExists(MessengerError):
    """The download would replace a file the user did not name."""


def local_name(name: str, attachment_id: int) -> str:
    """A safe file name for an attachment called ``name``: its last path component without
    leading dots and control characters, else ``attachment-<id>``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base or f"attachment-{attachment_id}"


def download_target(name: str, attachment_id: int, output: Path | None, output_is_dir: bool
                    ) -> tuple[Path, bool]:
    """The file to write and whether an existing one may be replaced: ``output`` itself when
    it names a file (replaced: the user asked for it), else the attachment's ``local_name``
    in ``output`` (a directory) or in the current directory (not replaced)."""
    if output is not None and not output_is_dir:
        return output, True
    return (output or Path()) / local_name(name, attachment_id), False


async def save(api: RestApi, attachment_id: int, target: Path, replace: bool) -> None:
    """Download into ``target`` through a temporary file beside it. Unless ``replace``, the
    name is claimed first (created empty, exclusively: ``TargetExists`` if it is taken) and
    given back if the download fails."""
    claimed = False
    if not replace:
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            raise TargetExists(f"{target} exists: give -o PATH to replace it, or another "
                               "directory") from None
        claimed = True
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        await api.download(attachment_id, part)
        os.replace(part, target)
    except BaseException:
        if claimed:
            _remove(target)
        raise
    finally:
        _remove(part)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
