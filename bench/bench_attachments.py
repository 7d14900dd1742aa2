"""Upload and download throughput of one file through a real ``messenger serve``, on each
attachment storage: the local directory (embedded default) and S3 (moto's server on
loopback, started here; metadata stays in the embedded SQLite store).

    python -m bench.bench_attachments [--mb 10] [--repeat 5] [--storage local|s3|both]

Each round uploads ``--mb`` MiB of random bytes (a fresh file each time: random data is not
an image, so no image work is timed) with ``POST /v1/attachments``, then downloads it with
``GET /v1/attachments/{id}/content``, both streamed over HTTP/1.1 on loopback. It prints the
median and best MiB/s of each. On S3, ``--presigned`` also times the presigned upload
(client -> store directly, then ``complete``) and the presigned download.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.api.server import Account, MessengerProcess, new_account
from tests.servers.s3_server import ACCESS_KEY, SECRET_KEY, S3Server


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def rounds(server: MessengerProcess, mib: int, repeat: int, presigned: bool
           ) -> dict[str, list[float]]:
    """Seconds per round of each operation."""
    out: dict[str, list[float]] = {"upload": [], "download": []}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        alice: Account = new_account(client)
        for _ in range(repeat):
            data = os.urandom(mib * 1024 * 1024)
            answer: dict[str, str] = {}

            def up(data: bytes = data, answer: dict[str, str] = answer) -> None:
                r = client.post("/v1/attachments", params={"name": "f.bin"},
                                content=data, headers=alice.headers)
                r.raise_for_status()
                answer.update(r.json())

            out["upload"].append(timed(up))

            def down(answer: dict[str, str] = answer, data: bytes = data) -> None:
                size = 0
                with client.stream("GET", f"/v1/attachments/{answer['attachment_id']}"
                                   "/content", headers=alice.headers) as r:
                    r.raise_for_status()
                    for chunk in r.iter_bytes():
                        size += len(chunk)
                assert size == len(data)  # noqa: S101

            out["download"].append(timed(down))
            if presigned:
                for name, seconds in presigned_round(client, alice, data).items():
                    out.setdefault(name, []).append(seconds)
    return out


def presigned_round(client: httpx.Client, alice: Account, data: bytes) -> dict[str, float]:
    plan = client.post("/v1/attachments/uploads", headers=alice.headers,
                       json={"name": "p.bin", "size": len(data)}).json()
    put = timed(lambda: httpx.put(plan["url"], content=data, timeout=120).raise_for_status())
    aid = plan["attachment_id"]
    complete = timed(lambda: client.post(f"/v1/attachments/{aid}/complete",
                                         headers=alice.headers).raise_for_status())
    link = client.get(f"/v1/attachments/{aid}/url", headers=alice.headers).json()["url"]
    get = timed(lambda: httpx.get(link, timeout=120).raise_for_status())
    return {"presigned PUT (client -> S3)": put, "complete (app reads it once)": complete,
            "presigned GET (S3 -> client)": get}


def report(storage: str, mib: int, times: dict[str, list[float]]) -> None:
    for name, seconds in times.items():
        rates = [mib / s for s in seconds]
        print(f"{storage:6} {name:30} median {statistics.median(rates):7.1f} MiB/s  "
              f"best {max(rates):7.1f} MiB/s  ({len(rates)} x {mib} MiB)")


def run(storage: str, mib: int, repeat: int, presigned: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MESSENGER_ATTACHMENTS_MAX_BYTES": str((mib + 1) * 1024 * 1024)}
        s3: S3Server | None = None
        if storage == "s3":
            s3 = S3Server()
            s3.start()
            env |= {"MESSENGER_ATTACHMENTS_S3_BUCKET": f"bench-{uuid.uuid4().hex[:8]}",
                    "MESSENGER_ATTACHMENTS_S3_ENDPOINT": s3.endpoint,
                    "MESSENGER_ATTACHMENTS_S3_ACCESS_KEY_ID": ACCESS_KEY,
                    "MESSENGER_ATTACHMENTS_S3_SECRET_ACCESS_KEY": SECRET_KEY}
        server = MessengerProcess(Path(tmp) / "data", env)
        server.start()
        try:
            report(storage, mib, rounds(server, mib, repeat, presigned and s3 is not None))
        finally:
            server.stop()
            if s3 is not None:
                s3.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--storage", choices=["local", "s3", "both"], default="both")
    parser.add_argument("--presigned", action="store_true")
    args = parser.parse_args()
    for storage in ("local", "s3") if args.storage == "both" else (args.storage,):
        run(storage, args.mb, args.repeat, args.presigned)


if __name__ == "__main__":
    main()
