"""The InboxStore, AccountStore and MuteStore contracts (``inbox/store.py``), one suite run on
every backend exactly as ``api.stores`` opens it: the embedded SQLite set and the production
Redis + Cassandra set.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.stores import Stores
from inbox.core.errors import Conflict
from inbox.core.ids import direct_id
from inbox.core.models import (
    AppendBatch,
    Device,
    EntryDraft,
    EntryKind,
    Message,
    PushTarget,
    User,
)
from tests.inbox.backends import backend_stores

_users = itertools.count(int(time.time() * 1000) * 1000)


def _uid() -> int:
    return next(_users)


@pytest.fixture(params=["embedded", "production"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    async with backend_stores(request, tmp_path) as opened:
        yield opened


def _message(stores: Stores, sender: int, to: int, body: str, key: str | None = None
             ) -> AppendBatch:
    msg_id = stores.next_id()
    cid = direct_id(sender, to)
    now = int(time.time() * 1000)
    draft = EntryDraft(EntryKind.MESSAGE, msg_id, cid, sender, 1, now, body)
    return AppendBatch(draft, (sender, to), Message(msg_id, cid, sender, 1, body, now),
                       (sender, key) if key else None, sender)


async def test_append_is_in_every_inbox_in_order_with_history(stores: Stores) -> None:
    alice, bob = _uid(), _uid()
    appended = [await stores.inbox.append(_message(stores, alice, bob, f"m{i}"))
                for i in range(5)]
    for user in (alice, bob):
        page = await stores.inbox.read(user, 0, 3)
        rest = await stores.inbox.read(user, page.entries[-1].id, 10)
        entries = page.entries + rest.entries
        assert page.has_more and not rest.has_more
        assert [e.draft.body for e in entries] == [f"m{i}" for i in range(5)]
        assert [e.id for e in entries] == [a.positions[user] for a in appended]
        assert all(e.id >= e.draft.msg_id for e in entries)  # Snowflake-shaped positions
        assert await stores.inbox.head(user) == entries[-1].id
        assert appended[0].previous[user] == 0
        assert [a.previous[user] for a in appended[1:]] == [e.id for e in entries[:-1]]
    assert appended[-1].receipt is not None and appended[-1].receipt.id == \
        appended[-1].positions[alice]
    cid = direct_id(alice, bob)
    history = await stores.inbox.history(cid, None, 3)
    assert [m.body for m in history] == ["m4", "m3", "m2"]
    older = await stores.inbox.history(cid, history[-1].msg_id, 10)
    assert [m.body for m in older] == ["m1", "m0"]
    assert await stores.inbox.head(_uid()) == 0
    assert (await stores.inbox.read(_uid(), 0, 10)).entries == []


async def test_idempotency_key_makes_concurrent_appends_happen_once(stores: Stores) -> None:
    alice, bob = _uid(), _uid()
    results = await asyncio.gather(*[
        stores.inbox.append(_message(stores, alice, bob, f"try {n}", "same-key"))
        for n in range(6)
    ])
    assert sum(not r.replayed for r in results) == 1
    assert len({r.receipt for r in results}) == 1
    entries = (await stores.inbox.read(bob, 0, 10)).entries
    assert len(entries) == 1
    receipt = results[0].receipt
    assert receipt is not None and entries[0].draft.msg_id == receipt.msg_id
    assert await stores.inbox.receipt((alice, "same-key")) == receipt
    assert await stores.inbox.receipt((alice, "other-key")) is None


async def test_delete_for_everyone_hides_the_message(stores: Stores) -> None:
    alice, bob = _uid(), _uid()
    sent = await stores.inbox.append(_message(stores, alice, bob, "oops"))
    assert sent.receipt is not None
    msg_id = sent.receipt.msg_id
    assert (await stores.inbox.get_message(msg_id)) is not None
    draft = EntryDraft(EntryKind.DELETE, msg_id, direct_id(alice, bob), alice, 1,
                       int(time.time() * 1000), scope="everyone")
    await stores.inbox.append(AppendBatch(draft, (alice, bob)))
    assert await stores.inbox.get_message(msg_id) is None
    assert await stores.inbox.history(direct_id(alice, bob), None, 10) == []
    kinds = [e.kind for e in (await stores.inbox.read(bob, 0, 10)).entries]
    assert kinds == [EntryKind.MESSAGE, EntryKind.DELETE]


async def test_accounts_users_devices_cursors_and_push_tokens(stores: Stores) -> None:
    accounts = stores.accounts
    user_id = _uid()
    name = f"contract{user_id}"
    await accounts.create_user(User(user_id, name, "Contract", "hash", 1))
    with pytest.raises(Conflict):
        await accounts.create_user(User(_uid(), name, "Other", "hash", 2))
    assert (await accounts.find_user(name)) == await accounts.get_user(user_id)
    assert await accounts.get_user(_uid()) is None
    phone, desk = _uid(), _uid()
    for device_id, created in ((phone, 10), (desk, 20)):
        await accounts.put_device(Device(device_id, user_id, "d", "ios", True, 0, created))
    assert [d.device_id for d in await accounts.list_devices(user_id)] == [phone, desk]
    assert await accounts.ack(phone, 50) == 50
    assert await accounts.ack(phone, 40) == 50  # never back
    await accounts.set_push(phone, PushTarget("fcm", "tok-0"))
    await accounts.put_device(Device(phone, user_id, "re", "ios", True, 0, 10))  # a re-login
    again = await accounts.get_device(phone)
    assert again is not None and again.cur_max_msg_id == 50 and again.device_name == "re"
    assert again.push == PushTarget("fcm", "tok-0")  # None keeps the token
    await accounts.touch(phone, 1234)
    device = await accounts.get_device(phone)
    assert device is not None and device.cur_max_msg_id == 50 and device.last_seen_ms == 1234
    await accounts.set_push(phone, PushTarget("fcm", "tok-1"))
    await accounts.set_push(desk, PushTarget("fcm", "tok-1"))  # the token moves
    assert (await accounts.get_device(phone)).push is None  # type: ignore[union-attr]
    assert await accounts.clear_push(desk, "other-token") is False  # compare-and-clear
    assert await accounts.clear_push(desk, "tok-1") is True
    await accounts.set_push(phone, PushTarget("apns", "tok-2", "com.example"))
    await accounts.deactivate_device(phone)
    gone = await accounts.get_device(phone)
    assert gone is not None and not gone.active and gone.push is None
    assert [d.device_id for d in await accounts.list_devices(user_id)] == [desk]


async def test_devices_of_many_users_at_once(stores: Stores) -> None:
    accounts = stores.accounts
    users = [_uid() for _ in range(4)]
    for n, user_id in enumerate(users[:3]):
        await accounts.create_user(User(user_id, f"many{user_id}", "Many", "hash", 1))
        for k in range(n + 1):
            await accounts.put_device(Device(_uid(), user_id, "d", "ios", True, 0, 10 + k))
    first = (await accounts.list_devices(users[0]))[0]
    await accounts.ack(first.device_id, 77)
    await accounts.set_push(first.device_id, PushTarget("fcm", f"tok-{first.device_id}"))
    gone = (await accounts.list_devices(users[2]))[0]
    await accounts.deactivate_device(gone.device_id)

    found = await accounts.devices_of([*users, users[0]])  # a repeat, and one with nothing
    assert set(found) == set(users[:3])
    for user_id in users[:3]:
        assert found[user_id] == await accounts.list_devices(user_id)
    assert [len(found[u]) for u in users[:3]] == [1, 2, 2]  # the logged-out one is left out
    [device] = found[users[0]]
    assert device.cur_max_msg_id == 77
    assert device.push == PushTarget("fcm", f"tok-{first.device_id}")
    assert await accounts.devices_of([]) == {}
    together = await asyncio.gather(accounts.devices_of([users[0]]),
                                    accounts.devices_of([users[1], users[3]]))
    assert list(together) == [{users[0]: found[users[0]]}, {users[1]: found[users[1]]}]


async def test_mutes(stores: Stores) -> None:
    user, cid = _uid(), "d:1:2"
    assert not await stores.mutes.muted(user, cid, 1000)
    await stores.mutes.set_mute(user, cid, None)
    assert await stores.mutes.muted(user, cid, 10**15)
    await stores.mutes.set_mute(user, cid, 5000)
    assert await stores.mutes.muted(user, cid, 4999)
    assert not await stores.mutes.muted(user, cid, 5000)
    await stores.mutes.set_mute(user, cid, 1)  # a past time unmutes
    assert not await stores.mutes.muted(user, cid, 1000)


async def test_readiness_probes_answer(stores: Stores) -> None:
    assert stores.checks
    for probe in stores.checks.values():
        await probe.ping()
