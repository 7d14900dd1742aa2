"""The embedded worker-id lease: one messenger process per data dir, via flock."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from idgen.lease import LeaseLostError, LeaseUnavailableError
from idgen.lease_file import FileWorkerLease

REPO_ROOT = Path(__file__).resolve().parents[2]

# A second messenger process: takes the lease on argv[1], reports, then holds it until stdin
# closes (or until it is killed).
_HOLDER = """
import asyncio, sys
from pathlib import Path
from idgen.lease import LeaseUnavailableError
from idgen.lease_file import FileWorkerLease

async def main() -> None:
    lease = FileWorkerLease(Path(sys.argv[1]))
    try:
        worker_id = await lease.acquire()
    except LeaseUnavailableError as exc:
        print("unavailable:", exc, flush=True)
        return
    print("acquired", worker_id, flush=True)
    sys.stdin.read()
    await lease.release()

asyncio.run(main())
"""


async def start_other_process(lock: Path) -> tuple[asyncio.subprocess.Process, str]:
    """Run the holder script in a new Python process; return it and its first output line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        str(lock),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
    return proc, line.decode().strip()


def contents(path: Path) -> str:
    """The lock file's text (tiny local file: fine to read inline in a test)."""
    return path.read_text()


def replace_with_other_file(path: Path) -> None:
    path.write_text("someone else's file\n")


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), timeout=20)


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "idgen.lock"


@pytest_asyncio.fixture
async def held(lock_path: Path) -> AsyncIterator[FileWorkerLease]:
    lease = FileWorkerLease(lock_path)
    await lease.acquire()
    yield lease
    await lease.release()


@pytest.mark.asyncio
async def test_acquire_returns_worker_zero_and_records_our_pid(lock_path: Path) -> None:
    lease = FileWorkerLease(lock_path)
    assert await lease.acquire() == 0
    assert lease.worker_id == 0
    assert contents(lock_path) == f"{os.getpid()}\n"  # the data dir was created too
    await lease.release()


@pytest.mark.asyncio
async def test_second_lease_object_on_the_same_path_fails_while_the_first_holds(
    held: FileWorkerLease, lock_path: Path
) -> None:
    second = FileWorkerLease(lock_path)
    with pytest.raises(LeaseUnavailableError) as caught:
        await second.acquire()
    assert str(caught.value).startswith(
        f"data dir {lock_path.parent} is in use by another messenger process (pid {os.getpid()})"
    )
    with pytest.raises(RuntimeError, match="not held"):
        _ = second.worker_id
    await held.renew()  # the failed attempt did not disturb the holder


@pytest.mark.asyncio
async def test_second_lease_succeeds_after_release(lock_path: Path) -> None:
    first = FileWorkerLease(lock_path)
    await first.acquire()
    await first.release()
    second = FileWorkerLease(lock_path)
    assert await second.acquire() == 0
    with pytest.raises(LeaseUnavailableError):
        await first.acquire()
    await second.release()


@pytest.mark.asyncio
async def test_another_process_is_refused_while_we_hold(
    held: FileWorkerLease, lock_path: Path
) -> None:
    proc, line = await start_other_process(lock_path)
    await stop(proc)
    assert line.startswith("unavailable: data dir ")
    assert f"is in use by another messenger process (pid {os.getpid()})" in line
    assert proc.returncode == 0


@pytest.mark.asyncio
async def test_we_are_refused_while_another_process_holds_and_admitted_after_it_exits(
    lock_path: Path,
) -> None:
    proc, line = await start_other_process(lock_path)
    try:
        assert line == "acquired 0"
        ours = FileWorkerLease(lock_path)
        with pytest.raises(LeaseUnavailableError, match=rf"\(pid {proc.pid}\)"):
            await ours.acquire()
    finally:
        await stop(proc)
    assert await ours.acquire() == 0
    await ours.release()


@pytest.mark.asyncio
async def test_lock_is_freed_when_the_holder_is_killed(lock_path: Path) -> None:
    proc, line = await start_other_process(lock_path)
    assert line == "acquired 0"
    proc.kill()  # SIGKILL: no release, no cleanup; the kernel drops the flock
    await proc.wait()
    ours = FileWorkerLease(lock_path)
    assert await ours.acquire() == 0
    assert contents(lock_path) == f"{os.getpid()}\n"
    await ours.release()


@pytest.mark.asyncio
async def test_renew_checks_the_lock_file_is_still_ours(
    held: FileWorkerLease, lock_path: Path
) -> None:
    await held.renew()
    os.unlink(lock_path)
    with pytest.raises(LeaseLostError, match="deleted"):
        await held.renew()
    replace_with_other_file(lock_path)
    with pytest.raises(LeaseLostError, match="replaced"):
        await held.renew()


@pytest.mark.asyncio
async def test_renew_without_holding_is_lost(lock_path: Path) -> None:
    lease = FileWorkerLease(lock_path)
    with pytest.raises(LeaseLostError, match="not held"):
        await lease.renew()


@pytest.mark.asyncio
async def test_release_is_idempotent_and_clears_the_pid(lock_path: Path) -> None:
    lease = FileWorkerLease(lock_path)
    await lease.release()  # never acquired: no-op
    await lease.acquire()
    await lease.release()
    await lease.release()
    assert contents(lock_path) == ""
    with pytest.raises(RuntimeError, match="not held"):
        _ = lease.worker_id


@pytest.mark.asyncio
async def test_acquiring_twice_on_one_object_is_a_programming_error(
    held: FileWorkerLease,
) -> None:
    with pytest.raises(RuntimeError, match="already held"):
        await held.acquire()
    assert held.worker_id == 0
