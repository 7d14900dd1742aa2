"""Two clients chatting through a real server, on every backend: live delivery in order and
once, receipts, cursor and acks, the REST features, typed errors, credentials refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from messenger_client import (
    CredentialsError,
    Forbidden,
    MessengerError,
    NotFound,
    Presence,
    Profile,
    SendFailed,
    Sent,
    Typing,
    direct_conversation_id,
    group_conversation_id,
)
from tests.api.server import MessengerProcess
from tests.messenger_client.support import (
    Inbox,
    assert_in_order_once,
    chat,
    eventually,
    open_client,
    signup,
)


async def test_two_clients_chat_each_entry_once_in_order(server: MessengerProcess,
                                                         tmp_path: Path) -> None:
    async with chat(tmp_path, server.url) as c:
        to_bob = [c.alice.enqueue(f"a{i}", to_user=c.b) for i in range(20)]
        for i in range(10):
            c.bob.enqueue(f"b{i}", to_user=c.a)
        receipts = [await c.alice.wait_sent(item.client_msg_id) for item in to_bob]
        await c.bob.flush()
        for inbox in (c.alice_inbox, c.bob_inbox):
            await inbox.wait(lambda box: len(box.bodies()) == 30)
            assert_in_order_once(inbox.entries)
            assert inbox.bodies(c.a) == [f"a{i}" for i in range(20)]
            assert inbox.bodies(c.b) == [f"b{i}" for i in range(10)]
        delivered = [e.msg_id for e in c.bob_inbox.entries if e.sender_id == c.a]
        assert delivered == [r.msg_id for r in receipts]
        assert [r.id for r in receipts] == [e.id for e in c.alice_inbox.entries
                                            if e.sender_id == c.a]
        assert len(c.alice_inbox.of(Sent)) == 20 and not c.bob.pending()
        answered = c.alice.wait_sent(to_bob[0].client_msg_id)  # long answered: at once
        assert await asyncio.wait_for(answered, 5) == receipts[0]
        with pytest.raises(MessengerError):
            await c.alice.wait_sent("never-queued")
        # The live stream is the inbox: a full REST sync from 0 holds the same entries.
        page = await c.bob.api.sync(0, 1000)
        assert [e.id for e in page.entries] == [e.id for e in c.bob_inbox.entries]
        last = c.bob_inbox.entries[-1].id
        await eventually(lambda: c.bob.cursor == last)

        async def acked() -> bool:
            return [d.cur_max_msg_id for d in await c.bob.api.devices()] == [last]
        await eventually(acked)
        bob_profile = c.bob.profile.path
    with Profile(bob_profile) as profile:
        assert profile.cursor() == last


async def test_groups_typing_presence_reads_deletes_history_and_push(
        server: MessengerProcess, tmp_path: Path) -> None:
    async with chat(tmp_path, server.url) as c:
        alice, bob = c.alice, c.bob
        group = await alice.api.create_group("Hiking", [c.b], client_group_id="g1")
        assert group.member_ids == (c.a, c.b)
        await c.bob_inbox.wait(lambda box: any(e.kind == "group_event" for e in box.entries))
        gid = group_conversation_id(group.group_id)
        await alice.send("Saturday?", to_group=group.group_id)
        await c.bob_inbox.wait(lambda box: box.bodies(c.a) == ["Saturday?"])
        assert (await bob.api.presence([c.a]))[c.a].status == "online"
        assert await bob.typing(gid)
        await c.alice_inbox.wait(lambda box: Typing(gid, c.b) in box.of(Typing))

        direct = direct_conversation_id(c.a, c.b)
        for i in range(7):
            await alice.send(f"d{i}", to_user=c.b)
        pages = [page async for page in bob.api.history_pages(direct, page_size=3)]
        assert [[m.body for m in p] for p in pages] == [["d6", "d5", "d4"], ["d3", "d2", "d1"],
                                                       ["d0"]]
        last = pages[0][0].msg_id
        await bob.mark_read(direct, last)
        await c.alice_inbox.wait(lambda box: any(e.kind == "read" and e.up_to_msg_id == last
                                                 for e in box.entries))
        assert [conv.unread for conv in await bob.api.conversations()
                if conv.conversation_id == direct] == [0]
        await alice.api.delete_message(last, scope="everyone")
        await c.bob_inbox.wait(lambda box: any(e.kind == "delete" and e.msg_id == last
                                               for e in box.entries))
        assert "d6" not in [m.body for m in await bob.api.history(direct)]

        await bob.api.set_push(bob.session.device_id, "fcm", "fcm-token-1")
        assert [d.push_provider for d in await bob.api.devices()] == ["fcm"]
        await bob.api.clear_push(bob.session.device_id)
        assert [d.push_provider for d in await bob.api.devices()] == [None]

        await bob.leave_group(group.group_id)
        await c.alice_inbox.wait(lambda box: any(
            e.kind == "group_event" and (e.group or {}).get("event") == "member_removed"
            for e in box.entries))
        with pytest.raises(Forbidden) as refused:
            await bob.send("still here?", to_group=group.group_id)
        assert (refused.value.code, refused.value.status) == ("forbidden", 403)
        await c.bob_inbox.wait(lambda box: bool(box.of(SendFailed)))
        assert not bob.pending()
        with pytest.raises(NotFound) as unknown:
            await bob.api.find_user("nobody-of-that-name")
        assert (unknown.value.code, unknown.value.status) == ("not_found", 404)
        await bob.aclose()
        await c.alice_inbox.wait(lambda box: any(
            p.user_id == c.b and p.status == "offline" for p in box.of(Presence)))


async def test_a_logged_out_device_stops_with_a_credentials_error(
        server: MessengerProcess, tmp_path: Path) -> None:
    path = await signup(server.url, tmp_path, "a")
    async with open_client(path) as client:
        inbox = Inbox(client)
        await inbox.wait(lambda box: client.connected)
        await client.api.logout(client.session.device_id)
        with pytest.raises(CredentialsError) as info:
            await inbox.wait(lambda box: False)
        assert (info.value.code, info.value.status) == ("unauthorized", 401)
        with pytest.raises(CredentialsError):
            await client.send("lost?", to_user=client.session.user_id)
    async with open_client(path) as again:  # refused at the upgrade now
        with pytest.raises(CredentialsError) as refused:
            await Inbox(again).wait(lambda box: False)
        assert refused.value.code == "invalid_token"
