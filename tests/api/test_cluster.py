"""Two ``messenger serve`` processes sharing Redis + Cassandra: guarantees 1-3 of
docs/architecture.md across nodes, cross-node live delivery, worker-id leases, and Redis lost
or down under a running node.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from idgen.snowflake import decode
from tests.api.backends import production_env
from tests.api.server import (
    Account,
    MessengerProcess,
    new_account,
    send,
    sync_all,
    sync_until_done,
)
from tests.api.wsclient import collect_entries, open_ws
from tests.servers.redis_server import RedisServer

SENDERS_PER_NODE = 4
PER_SENDER = 30


def send_retrying(client: httpx.Client, sender: Account, to: str, body: str) -> httpx.Response:
    """Send as a client does: a 503 is retried with the same ``client_msg_id`` (docs/errors.md).

    After Redis lost its data, nodes issue no ids until every former worker-id holder must
    have stopped (lease TTL + clock skew, ~11 s): a client sees 503s for that long.
    """
    key = uuid.uuid4().hex
    deadline = time.monotonic() + 30
    while True:
        r = send(client, sender, to, body, key)
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def _start_nodes(tmp: Path, env: dict[str, str], count: int = 2) -> list[MessengerProcess]:
    nodes = [MessengerProcess(tmp / f"node{n}", {"MESSENGER_HEARTBEAT_INTERVAL_MS": "1000", **env})
             for n in range(count)]
    for node in nodes:
        node.start()
    return nodes


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, cassandra_server: Any
          ) -> Iterator[list[MessengerProcess]]:
    """Two nodes on one Redis database and one keyspace."""
    env = production_env(redis_server, cassandra_server, "cluster")
    started = _start_nodes(tmp_path_factory.mktemp("cluster"), env)
    yield started
    for node in started:
        node.stop()


def test_invariant_1_two_nodes_sending_concurrently_to_one_inbox(
    nodes: list[MessengerProcess],
) -> None:
    """Senders on both nodes; a device paging through node A's sync sees each entry once."""
    node_a, node_b = nodes
    with node_a.client() as c:
        owner = new_account(c)
        senders = [new_account(c) for _ in range(2 * SENDERS_PER_NODE)]
    done = threading.Event()
    seen: list[dict[str, Any]] = []
    failures: list[str] = []

    def send_loop(k: int) -> None:
        node = nodes[k % 2]
        with node.client() as c:
            for i in range(PER_SENDER):
                r = send(c, senders[k], owner.user_id, f"{k}:{i}")
                if r.status_code != 201:
                    failures.append(r.text)

    syncer = threading.Thread(target=sync_until_done, args=(node_a, owner, done, seen, 5))
    syncer.start()
    threads = [threading.Thread(target=send_loop, args=(k,)) for k in range(len(senders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    syncer.join(60)
    assert failures == []
    ids = [int(e["id"]) for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "out of order or duplicated"
    bodies = [e["body"] for e in seen]
    expected = [f"{k}:{i}" for k in range(len(senders)) for i in range(PER_SENDER)]
    assert sorted(bodies) == sorted(expected)
    for k in range(len(senders)):
        assert [b for b in bodies if b.startswith(f"{k}:")] == [f"{k}:{i}" for i in
                                                                 range(PER_SENDER)]
    with node_b.client() as c:  # the other node serves the same inbox, identically
        again, _ = sync_all(c, owner)
    assert [e["id"] for e in again] == [e["id"] for e in seen]


def test_invariant_3_retries_on_both_nodes_create_one_message(
    nodes: list[MessengerProcess],
) -> None:
    with nodes[0].client() as c:
        alice, bob = new_account(c), new_account(c)
    results: list[httpx.Response] = []

    def retry(node: MessengerProcess) -> None:
        with node.client() as c:
            results.append(send(c, alice, bob.user_id, "once", "same-key"))

    threads = [threading.Thread(target=retry, args=(nodes[k % 2],)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] * 7 + [201]
    assert len({r.json()["msg_id"] for r in results}) == 1
    with nodes[1].client() as c:
        entries, _ = sync_all(c, bob)
    assert [e["body"] for e in entries] == ["once"]


async def test_live_delivery_crosses_nodes(nodes: list[MessengerProcess]) -> None:
    """Bob's devices on node A and node B both get what Alice sends through either node."""
    node_a, node_b = nodes
    with node_a.client() as c:
        alice, bob = new_account(c), new_account(c)
        bob_2 = new_account(c)  # an unrelated user on node B must not see anything
    on_a = await open_ws(node_a.ws_url, bob)
    on_b = await open_ws(node_b.ws_url, bob_2)
    try:
        with node_b.client() as c:
            r = await asyncio.to_thread(send, c, alice, bob.user_id, "from node B")
        assert r.status_code == 201
        [entry] = await collect_entries(on_a, 1)
        assert entry["body"] == "from node B" and entry["msg_id"] == r.json()["msg_id"]
        with node_a.client() as c:
            r2 = await asyncio.to_thread(send, c, alice, bob_2.user_id, "to node B's socket")
        [entry2] = await collect_entries(on_b, 1)
        assert entry2["msg_id"] == r2.json()["msg_id"]
    finally:
        await on_a.close()
        await on_b.close()


def test_nodes_lease_distinct_worker_ids(nodes: list[MessengerProcess]) -> None:
    workers = set()
    for node in nodes:
        with node.client() as c:
            a, b = new_account(c), new_account(c)
            workers.add(decode(int(send(c, a, b.user_id, "id").json()["msg_id"])).worker_id)
    assert len(workers) == 2


def test_redis_restarted_empty_loses_no_acknowledged_message(
    tmp_path: Path, cassandra_server: Any
) -> None:
    """Invariant 2 end to end: Redis loses its memory under two nodes; every 201 still syncs,
    in the order first seen, and sends resume; while Redis is down, readyz names it."""
    with RedisServer() as redis:
        env = production_env(redis, cassandra_server, "redislost")
        node_a, node_b = _start_nodes(tmp_path, env)
        try:
            with node_a.client() as ca, node_b.client() as cb:
                alice, bob = new_account(ca), new_account(ca)
                before = [send((ca, cb)[i % 2], alice, bob.user_id, f"b{i}").json()["msg_id"]
                          for i in range(20)]
                first, cursor = sync_all(ca, bob, limit=7)
                redis.kill()
                ready = ca.get("/readyz")
                assert ready.status_code == 503 and "redis" in ready.json()["checks"]
                assert ready.json()["checks"]["cassandra"] == "ok"
                down = send(ca, alice, bob.user_id, "while down")
                assert down.status_code == 503
                assert down.json()["error"] == {"code": "unavailable",
                                                "message": "Redis is unavailable; retry later"}
                served, _ = sync_all(cb, bob)  # from Cassandra, up to a time-safe mark
                redis.start()  # same port, empty memory
                after = [send_retrying((ca, cb)[i % 2], alice, bob.user_id, f"a{i}")
                         for i in range(10)]
                assert [r.status_code for r in after] == [201] * 10, [r.text for r in after]
                new, _ = sync_all(cb, bob, cursor)
                full, _ = sync_all(ca, bob)
        finally:
            node_a.stop()
            node_b.stop()
    assert [e["msg_id"] for e in first] == before
    assert [e["msg_id"] for e in served] == before[:len(served)]
    assert [e["body"] for e in new] == [f"a{i}" for i in range(10)]
    assert [e["body"] for e in full] == [f"b{i}" for i in range(20)] + [f"a{i}" for i in
                                                                         range(10)]
    ids = [int(e["id"]) for e in full]
    assert ids == sorted(set(ids))
