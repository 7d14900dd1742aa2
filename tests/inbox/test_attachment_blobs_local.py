"""The local blob store's own lifecycle: opening it (a process starting) drops what a crash
left in its temporary directory, not what another process sharing the directory
(``messenger serve --workers N``) is writing right now."""

from __future__ import annotations

import os
import time
from pathlib import Path

from inbox.attachments.blobs_local import LocalBlobStore
from inbox.attachments.spool import STALE_TEMP_S


async def test_open_keeps_fresh_temporary_files_of_other_processes(tmp_path: Path) -> None:
    first = LocalBlobStore(tmp_path)
    await first.open()
    in_flight = tmp_path / "tmp" / "being-written"
    in_flight.write_bytes(b"half")
    crashed = tmp_path / "tmp" / "left-by-a-crash"
    crashed.write_bytes(b"old")
    old = time.time() - STALE_TEMP_S - 60
    os.utime(crashed, (old, old))
    await LocalBlobStore(tmp_path).open()  # another worker starts
    assert in_flight.exists()
    assert not crashed.exists()
