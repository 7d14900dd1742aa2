"""Push end to end: a real server with the real pyfcm client talking to a local fake Google.

Invariant 7: a message to an offline device with a token produces one push; online devices,
the sender's own devices and muted conversations get none.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.api.backends import production_env, with_redis_db
from tests.api.server import Account, MessengerProcess, login, new_account, send
from tests.api.wsclient import collect_entries, open_ws
from tests.push.fake_fcm import FakeFcm, FcmReply, google_error

PUSH_REDIS_DB = 4


@pytest.fixture
async def push_server(fcm: FakeFcm, tmp_path: Path, backend_env: dict[str, str]
                      ) -> AsyncIterator[MessengerProcess]:
    credentials = fcm.write_service_account(tmp_path / "service-account.json")
    env = {"MESSENGER_FCM_CREDENTIALS": str(credentials), "MESSENGER_FCM_ENDPOINT": fcm.base_url,
           **with_redis_db(backend_env, PUSH_REDIS_DB)}
    server = MessengerProcess(tmp_path / "data", env)
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _register(client: httpx.Client, account: Account, token: str) -> None:
    r = await _call(client.put, f"/v1/devices/{account.device_id}/push",
                    json={"provider": "fcm", "token": token}, headers=account.headers)
    assert r.status_code == 204, r.text


async def _pushes_to(fcm: FakeFcm, token: str, wait_s: float = 1.5) -> list[dict[str, Any]]:
    await asyncio.sleep(wait_s)
    return [r.body["message"] for r in fcm.requests if r.body["message"]["token"] == token]


async def test_offline_device_gets_exactly_one_push_with_payload_and_badge(
    push_server: MessengerProcess, fcm: FakeFcm
) -> None:
    with push_server.client() as client:
        alice, bob = await _call(new_account, client), await _call(new_account, client)
        await _register(client, bob, "bob-phone-token")
        await _call(send, client, alice, bob.user_id, "first")
        receipt = (await _call(send, client, alice, bob.user_id, "second")).json()
        pushes = await _pushes_to(fcm, "bob-phone-token")
    assert len(pushes) == 2
    last = pushes[-1]
    assert last["notification"] == {"title": alice.username, "body": "second"}
    assert last["data"]["conversation_id"] == receipt["conversation_id"]
    assert last["data"]["msg_id"] == receipt["msg_id"]
    assert int(last["data"]["id"]) >= int(receipt["msg_id"])  # bob's inbox position
    assert last["android"]["notification"]["notification_count"] == 2  # badge: total unread
    assert last["android"]["collapse_key"] == receipt["conversation_id"]


async def test_online_sender_and_muted_devices_get_none(
    push_server: MessengerProcess, fcm: FakeFcm
) -> None:
    with push_server.client() as client:
        alice, bob, carol = [await _call(new_account, client) for _ in range(3)]
        alice_tablet = await _call(login, client, alice.username)
        await _register(client, alice_tablet, "alice-tablet")  # the sender's own device
        await _register(client, bob, "bob-online")
        await _register(client, carol, "carol-muted")
        ws = await open_ws(push_server.ws_url, bob)
        cid = (await _call(send, client, alice, carol.user_id, "before mute")).json()
        r = await _call(client.post, f"/v1/conversations/{cid['conversation_id']}/mute",
                        json={"until": None}, headers=carol.headers)
        assert r.status_code == 204
        await _call(send, client, alice, bob.user_id, "to online bob")
        [entry] = await collect_entries(ws, 1)  # applied and acked: no push, now or later
        await ws.send(json.dumps({"op": "ack", "cur_max_msg_id": entry["id"]}))
        await _call(send, client, alice, carol.user_id, "to muted carol")
        await asyncio.sleep(1.5)
        await ws.close()
        await asyncio.sleep(1.5)
        tokens = [r.body["message"]["token"] for r in fcm.requests]
        assert tokens == ["carol-muted"]  # only the message sent before the mute


async def test_unregistered_token_is_removed(push_server: MessengerProcess, fcm: FakeFcm
                                             ) -> None:
    fcm.reply(FcmReply(404, google_error(404, "NOT_FOUND", "not registered", "UNREGISTERED")))
    with push_server.client() as client:
        alice, bob = await _call(new_account, client), await _call(new_account, client)
        await _register(client, bob, "stale-token")
        await _call(send, client, alice, bob.user_id, "hello?")
        await asyncio.sleep(1.5)
        devices = (await _call(client.get, "/v1/devices", headers=bob.headers)).json()
        metrics = (await _call(client.get, "/metrics")).text
    assert devices[0]["push"] is None
    assert 'messenger_push_dropped_tokens_total{provider="fcm"} 1' in metrics


async def test_jobs_wait_in_the_durable_queue_for_a_separate_push_worker(
    fcm: FakeFcm, tmp_path: Path, backend_env: dict[str, str]
) -> None:
    credentials = fcm.write_service_account(tmp_path / "service-account.json")
    env = {"MESSENGER_FCM_CREDENTIALS": str(credentials), "MESSENGER_FCM_ENDPOINT": fcm.base_url,
           **with_redis_db(backend_env, PUSH_REDIS_DB)}
    server = MessengerProcess(tmp_path / "data", {**env, "MESSENGER_PUSH_WORKERS": "0"})
    await asyncio.to_thread(server.start)
    try:
        with server.client() as client:
            alice, bob = await _call(new_account, client), await _call(new_account, client)
            await _register(client, bob, "bob-token")
            await _call(send, client, alice, bob.user_id, "queued")
            assert await _pushes_to(fcm, "bob-token", 1.0) == []  # no worker in the API node
        worker = subprocess.Popen(  # noqa: ASYNC220 (a short-lived spawn)
            [sys.executable, "-m", "api.cli", "push-worker"],
            env={**server.env, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                if fcm.requests:
                    break
                await asyncio.sleep(0.1)
            pushes = await _pushes_to(fcm, "bob-token", 0.5)
            assert [p["notification"]["body"] for p in pushes] == ["queued"]
        finally:
            worker.terminate()
            worker.wait(10)
    finally:
        await asyncio.to_thread(server.stop)


async def test_in_production_jobs_go_through_the_redis_stream(
    fcm: FakeFcm, tmp_path: Path, redis_server: Any, cassandra_server: Any
) -> None:
    credentials = fcm.write_service_account(tmp_path / "service-account.json")
    stream_db = 7
    env = {**with_redis_db(production_env(redis_server, cassandra_server, "pushstream"),
                           stream_db),
           "MESSENGER_FCM_CREDENTIALS": str(credentials), "MESSENGER_FCM_ENDPOINT": fcm.base_url}
    server = MessengerProcess(tmp_path / "data", env)
    await asyncio.to_thread(server.start)
    try:
        with server.client() as client:
            alice, bob = await _call(new_account, client), await _call(new_account, client)
            await _register(client, bob, "bob-redis-token")
            await _call(send, client, alice, bob.user_id, "via redis")
            pushes = await _pushes_to(fcm, "bob-redis-token")
        assert [p["notification"]["body"] for p in pushes] == ["via redis"]
        probe = Redis(host=redis_server.host, port=redis_server.port, db=stream_db)
        assert await probe.exists("push:{jobs}") == 1
        await probe.aclose()
    finally:
        await asyncio.to_thread(server.stop)
