"""A running node whose Cassandra goes away and comes back (docs/architecture.md, "Failure
semantics").

Every request gets a clean answer while it is down (503 ``unavailable``, never a 500 or a hung
request), readiness names Cassandra, and once it is back a retried send is stored once and the
inbox syncs with no gap and no duplicate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.backends import production_env
from tests.api.server import MessengerProcess, new_account, send, sync_all
from tests.servers.cassandra_server import CassandraServer


def assert_names_only_cassandra(r: httpx.Response) -> None:
    """A 503 names the dependency in fixed text: the driver's error (hosts, queries, server
    messages) stays in the log."""
    assert r.status_code == 503, r.text
    assert r.json()["error"] == {"code": "unavailable",
                                 "message": "Cassandra is unavailable; retry later"}


def test_cassandra_down_answers_503_and_leaves_no_gap(
    tmp_path: Path, redis_server: Any, own_cassandra_server: CassandraServer
) -> None:
    env = production_env(redis_server, own_cassandra_server, "outage")
    node = MessengerProcess(tmp_path / "node", {**env, "MESSENGER_SEND_BURST": "1000"})
    node.start()
    try:
        with node.client() as c:
            alice, bob = new_account(c), new_account(c)
            before = [send(c, alice, bob.user_id, f"b{i}").json()["msg_id"] for i in range(5)]
            own_cassandra_server.stop()
            down = send(c, alice, bob.user_id, "while down", "retry-me")
            assert_names_only_cassandra(down)
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["cassandra"] == "unavailable"
            synced = c.get("/v1/sync", headers=bob.headers)  # may fall back to Redis's copy
            assert synced.status_code in (200, 503), synced.text
            for r in (c.get("/v1/conversations", headers=bob.headers),
                      c.get("/v1/devices", headers=bob.headers),
                      c.post("/v1/auth/login", json={"username": bob.username,
                                                     "password": "correct-horse",
                                                     "platform": "cli"})):
                assert_names_only_cassandra(r)  # never a 500, nor a wrong-password 401
            own_cassandra_server.start()
            retried = send(c, alice, bob.user_id, "while down", "retry-me")
            for _ in range(60):  # the driver reconnects within a few seconds
                if retried.status_code != 503:
                    break
                time.sleep(0.5)
                retried = send(c, alice, bob.user_id, "while down", "retry-me")
            assert retried.status_code == 201, retried.text
            after = send(c, alice, bob.user_id, "after").json()["msg_id"]
            entries, _ = sync_all(c, bob)
    finally:
        node.stop()
    assert "Cassandra: " in node.log_path.read_text()  # the driver's reasons go to the log
    assert [e["msg_id"] for e in entries] == [*before, retried.json()["msg_id"], after]
    ids = [int(e["id"]) for e in entries]
    assert ids == sorted(set(ids))
