"""``messenger serve --workers N``: N processes on one port, each a node of its own that
shares nothing but Redis and Cassandra with the others."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from tests.api.backends import API_REDIS_DB, production_env
from tests.api.server import MessengerProcess, new_account, send
from tests.api.wsclient import collect_entries, open_ws


def _workers(pid: int) -> list[int]:
    """The worker processes uvicorn started under ``pid`` (multiprocessing children)."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


async def test_workers_are_nodes_of_their_own_on_one_port(
    tmp_path: Path, redis_server: Any, cassandra_server: Any
) -> None:
    env = production_env(redis_server, cassandra_server, "workers")
    server = MessengerProcess(tmp_path / "data", env, args=("--workers", "2"))
    await asyncio.to_thread(server.start)
    redis = Redis(host=redis_server.host, port=redis_server.port, db=API_REDIS_DB)
    try:
        assert server.proc is not None
        assert len(_workers(server.proc.pid)) == 2
        with server.client() as client:
            alice, bob = new_account(client), new_account(client)
            sockets = [await open_ws(server.ws_url, bob) for _ in range(8)]
            nodes = {n.decode() if isinstance(n, bytes) else n
                     for n in await redis.smembers("bus:nodes")}
            ours = {n for n in nodes if n.startswith(f"127.0.0.1_{server.port}-")}
            assert len(ours) == 2, nodes  # one node per worker, named after its process
            assert send(client, alice, bob.user_id, "to every socket").status_code == 201
            for ws in sockets:  # whichever worker holds it
                (entry,) = await collect_entries(ws, 1)
                assert entry["body"] == "to every socket"
                await ws.close()
    finally:
        await redis.aclose()
        await asyncio.to_thread(server.stop)


def test_workers_are_refused_on_the_embedded_default(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "api.cli", "serve", "--workers", "2",
         "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "needs the production backend" in done.stderr


async def test_sigterm_drains_the_sockets_of_the_workers(
    tmp_path: Path, redis_server: Any, cassandra_server: Any
) -> None:
    """The parent passes SIGTERM on to its workers; each drains its own sockets (goaway,
    1001) before it stops, and the parent waits for them."""
    env = {**production_env(redis_server, cassandra_server, "workersdrain"),
           "MESSENGER_DRAIN_WINDOW_S": "1"}
    server = MessengerProcess(tmp_path / "data", env, args=("--workers", "2"))
    await asyncio.to_thread(server.start)
    try:
        assert server.proc is not None
        with server.client() as client:
            bob = new_account(client)
        sockets = [await open_ws(server.ws_url, bob) for _ in range(8)]
        server.proc.send_signal(signal.SIGTERM)
        for ws in sockets:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert frame["op"] == "goaway" and 0 <= frame["reconnect_after_ms"] <= 1000
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001
        assert await asyncio.to_thread(server.proc.wait, 30) is not None  # workers joined
    finally:
        await asyncio.to_thread(server.stop)
