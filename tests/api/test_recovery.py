"""How promptly real nodes recover from store faults, and that readiness tells the truth
meanwhile (docs/operations.md, "When a store goes away").

- Redis restarted empty under two nodes: each node keeps (re-takes) its own worker id, so
  sends and logins work again as soon as the inboxes' recovery window allows, and
  ``/readyz`` is never 200 while sends are refused.
- A node's worker id taken by another: ``/readyz`` is 503 (``worker_id``) for as long as
  sends are refused, and both recover together.
- A send in flight when its node is killed (kill -9): its retry on another node gets a 503
  with ``Retry-After`` within about a second, and succeeds once that time has passed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from idgen.lease_redis import worker_key
from idgen.snowflake import decode
from tests.api.backends import API_REDIS_DB, production_env
from tests.api.server import Account, MessengerProcess, new_account, send, sync_all
from tests.api.wsclient import next_frame, open_ws
from tests.messenger_client.proxy import TcpProxy
from tests.servers.redis_server import RedisServer

HEARTBEAT_ENV = {"MESSENGER_HEARTBEAT_INTERVAL_MS": "1000", "MESSENGER_SEND_BURST": "1000"}


@dataclass(frozen=True)
class Sample:
    """One probe round: readyz, a send, readyz again (seconds from the fault's end)."""

    at_s: float
    ready_before: int
    send: int
    ready_after: int
    login: int
    send_s: float

    def dishonest(self) -> bool:
        """The send was refused while readyz said ready on both sides of it: a state that
        refuses sends went unreported (both readyz 200 with a 503 between cannot come from
        one change of state)."""
        return self.ready_before == 200 and self.send == 503 and self.ready_after == 200


def probe(node: MessengerProcess, alice: Account, bob: Account, since: float,
          until: Callable[[list[Sample]], bool], limit_s: float = 30) -> list[Sample]:
    """Probe ``node`` in rounds until ``until(samples)`` holds, or ``limit_s`` after ``since``."""
    out: list[Sample] = []
    with node.client() as c:
        while time.monotonic() - since < limit_s and not until(out):
            at = time.monotonic() - since
            before = c.get("/readyz").status_code
            started = time.monotonic()
            sent = send(c, alice, bob.user_id, "probe").status_code
            took = time.monotonic() - started
            after = c.get("/readyz").status_code
            logged_in = c.post("/v1/auth/login", json={
                "username": alice.username, "password": "correct-horse", "platform": "cli",
            }).status_code  # fmt: skip
            out.append(Sample(round(at, 2), before, sent, after, logged_in, round(took, 2)))
            time.sleep(0.2)
    return out


def lasted(seconds: float) -> Callable[[list[Sample]], bool]:
    """Probe for this long (past the fault's end)."""
    return lambda samples: bool(samples) and samples[-1].at_s >= seconds


def recovered(samples: list[Sample]) -> bool:
    """Sends were refused, and work again."""
    refused = [n for n, s in enumerate(samples) if s.send == 503]
    return bool(refused) and samples[-1].send == 201 and samples[-1].ready_after == 200


def first_send_s(samples: list[Sample]) -> float:
    """Seconds from the fault's end to the answer of the first successful send."""
    return next(s.at_s + s.send_s for s in samples if s.send == 201)


def start_nodes(tmp: Path, envs: list[dict[str, str]]) -> list[MessengerProcess]:
    nodes = [MessengerProcess(tmp / f"node{n}", {**HEARTBEAT_ENV, **env})
             for n, env in enumerate(envs)]
    for node in nodes:
        node.start()
    return nodes


def test_redis_restarted_empty_resumes_sends_promptly_and_readyz_stays_honest(
    tmp_path: Path, cassandra_server: Any
) -> None:
    with RedisServer() as redis:
        env = production_env(redis, cassandra_server, "recovery")
        nodes = start_nodes(tmp_path, [env, env])
        try:
            with nodes[0].client() as c:
                alice, bob = new_account(c), new_account(c)
                assert send(c, alice, bob.user_id, "before").status_code == 201
            redis.kill()
            time.sleep(1)
            redis.start()  # same port, empty memory
            back = time.monotonic()
            timelines: list[list[Sample]] = [[], []]
            threads = [threading.Thread(target=lambda n=n: timelines[n].extend(
                probe(nodes[n], alice, bob, back, lasted(12)))) for n in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            with nodes[1].client() as c:
                entries, _ = sync_all(c, bob)
        finally:
            for node in nodes:
                node.stop()
    print("\nRedis restarted empty: (s after Redis back, readyz, send, readyz, login, send s)")
    for n, samples in enumerate(timelines):
        print(f"node {n}: first send {first_send_s(samples):.2f} s;",
              [(s.at_s, s.ready_before, s.send, s.ready_after, s.login, s.send_s)
               for s in samples])
        assert not [s for s in samples if s.dishonest()], samples
        assert first_send_s(samples) < 9, samples  # the inbox recovery window is 6 s
        assert all(s.login == 200 for s in samples), samples
        assert all(s.send == 201 for s in samples if s.at_s > first_send_s(samples)), samples
    bodies = [e["body"] for e in entries]
    assert bodies[0] == "before" and bodies.count("probe") == sum(
        s.send == 201 for samples in timelines for s in samples)


async def test_worker_id_taken_by_another_node_keeps_readyz_503_while_sends_are_refused(
    tmp_path: Path, cassandra_server: Any
) -> None:
    with RedisServer() as redis:
        env = production_env(redis, cassandra_server, "stolen")
        [node] = await asyncio.to_thread(start_nodes, tmp_path, [env])
        admin = Redis.from_url(f"redis://{redis.host}:{redis.port}/{API_REDIS_DB}")
        try:
            with node.client() as c:
                alice, bob = new_account(c), new_account(c)
                r = send(c, alice, bob.user_id, "before")
            stolen = decode(int(r.json()["msg_id"])).worker_id
            await admin.set(worker_key(stolen), "their-token:another-node", px=60_000)
            since = time.monotonic()
            samples = await asyncio.to_thread(probe, node, alice, bob, since, recovered)
            with node.client() as c:
                ready = c.get("/readyz").json()
                r = send(c, alice, bob.user_id, "after")
        finally:
            await admin.aclose()
            await asyncio.to_thread(node.stop)
    print("\nworker id taken:", [(s.at_s, s.ready_before, s.send, s.ready_after)
                                  for s in samples])
    assert not [s for s in samples if s.dishonest()], samples
    assert any(s.send == 503 and s.ready_after == 503 for s in samples), samples
    assert ready == {"ready": True, "checks": {"redis": "ok", "cassandra": "ok",
                                               "worker_id": "ok"}}
    assert decode(int(r.json()["msg_id"])).worker_id != stolen


async def _claimed(redis: Redis, key: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not await redis.exists(key):
        assert time.monotonic() < deadline, "the send never reserved"
        await asyncio.sleep(0.002)


async def test_retry_after_its_node_was_killed_mid_send_is_answered_promptly(
    tmp_path: Path, redis_server: Any, cassandra_server: Any
) -> None:
    """Node A is killed (-9) while its send waits on Cassandra, after the send claimed its
    idempotency key; the client retries on node B."""
    proxy = TcpProxy(cassandra_server.port, cassandra_server.host)
    await proxy.start()
    env = production_env(redis_server, cassandra_server, "killretry")
    via_proxy = {**env, "MESSENGER_CASSANDRA_HOSTS": f"{cassandra_server.host}:{proxy.port}"}
    node_a, node_b = await asyncio.to_thread(start_nodes, tmp_path, [via_proxy, env])
    redis = Redis.from_url(f"redis://{redis_server.host}:{redis_server.port}/{API_REDIS_DB}")
    key = uuid.uuid4().hex
    try:
        with node_b.client() as c:
            alice, bob = new_account(c), new_account(c)
        ws = await open_ws(node_a.ws_url, alice)
        await ws.send(json.dumps({"op": "send", "to_user": bob.user_id, "body": "warm-up",
                                  "client_msg_id": uuid.uuid4().hex}))
        assert (await next_frame(ws, "sent"))["op"] == "sent"  # node A knows bob now
        proxy.blackhole()  # node A's Cassandra stalls: the send holds after its reserve
        await ws.send(json.dumps({"op": "send", "to_user": bob.user_id, "body": "hello",
                                  "client_msg_id": key}))
        await _claimed(redis, f"idem:{{u:{alice.user_id}}}:{key}")
        await asyncio.to_thread(node_a.kill)
        with node_b.client() as c:
            started = time.monotonic()
            first = await asyncio.to_thread(send, c, alice, bob.user_id, "hello", key)
            answered_s = time.monotonic() - started
            retried = first
            while retried.status_code == 503 and time.monotonic() - started < 30:
                await asyncio.sleep(float(retried.headers.get("Retry-After", "0.5")))
                retried = await asyncio.to_thread(send, c, alice, bob.user_id, "hello", key)
            stored_s = time.monotonic() - started
            again = await asyncio.to_thread(send, c, alice, bob.user_id, "hello", key)
            entries, _ = await asyncio.to_thread(sync_all, c, bob)
    finally:
        await redis.aclose()
        await asyncio.to_thread(node_a.kill)
        await asyncio.to_thread(node_b.stop)
        await proxy.stop()
    print(f"\nretry after kill -9: first answer {first.status_code} in {answered_s:.2f} s "
          f"(Retry-After {first.headers.get('Retry-After')}), stored after {stored_s:.2f} s")
    assert answered_s < 2.5, (answered_s, first.text)
    assert first.status_code == 503 and int(first.headers["Retry-After"]) >= 1, first.text
    assert first.json()["error"]["code"] == "unavailable"
    assert retried.status_code == 201, retried.text
    assert stored_s < 10
    assert again.status_code == 200 and again.json()["msg_id"] == retried.json()["msg_id"]
    assert [e["body"] for e in entries] == ["warm-up", "hello"]
