"""``MessageService`` around its store: listeners, steps that fail, recipients that exist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from idgen.snowflake import SnowflakeGenerator
from inbox.accounts.known_users import KnownUsers
from inbox.accounts.store_sqlite import SqliteAccountStore
from inbox.core.errors import InvalidInput, NotFound, RateLimited, TooLarge, Unavailable
from inbox.core.models import Caller, User
from inbox.messages.service import Appends, MessageService, SendRequest
from inbox.messages.store_sqlite import SqliteInboxStore
from inbox.ratelimit.limiter_memory import MemoryRateLimiter
from inbox.ratelimit.port import SendLimits
from inbox.storage.sqlite_db import SqliteDatabase
from tests.push.support import ManualClock


@dataclass
class Recorder:
    """A listener that records what it was told, optionally waiting for ``wait_for`` first."""

    told: list[int] = field(default_factory=list)
    wait_for: asyncio.Event | None = None
    signal: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False

    async def on_appended(self, appends: Appends) -> None:
        self.signal.set()
        if self.wait_for is not None:
            await asyncio.wait_for(self.wait_for.wait(), 2)
        if self.fail:
            raise RuntimeError("listener broke")
        self.told += [batch.draft.msg_id for batch, _ in appends]


@dataclass
class FailingStep:
    """An append step that fails its first ``failures`` calls, then records."""

    failures: int
    done: list[bool] = field(default_factory=list)

    async def after_append(self, appends: Appends) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable("index write failed")
        self.done += [appended.replayed for _, appended in appends]


@dataclass
class World:
    accounts: SqliteAccountStore
    messages: MessageService
    alice: Caller
    bob: Caller
    ids: SnowflakeGenerator


@pytest.fixture
async def world(db: SqliteDatabase, clock: ManualClock, ids: SnowflakeGenerator
                ) -> AsyncIterator[World]:
    accounts = SqliteAccountStore(db)
    callers = []
    for name in ("alice", "bob"):
        user = User(ids.next_id(), name, name.title(), "hash", clock.now_ms())
        await accounts.create_user(user)
        callers.append(Caller(user.user_id, ids.next_id()))
    messages = MessageService(SqliteInboxStore(db), accounts, ids.next_id, clock)
    yield World(accounts, messages, callers[0], callers[1], ids)


def hello(world: World, key: str = "k1", to: int | None = None) -> SendRequest:
    return SendRequest(body="hi", client_msg_id=key, to_user=to or world.bob.user_id)


async def test_listeners_run_side_by_side(world: World) -> None:
    # Each waits for the other to have started: one after the other, the first would time out.
    first, second = Recorder(), Recorder()
    first.wait_for, second.wait_for = second.signal, first.signal
    world.messages.listeners = [first, second]
    receipt, _ = await world.messages.send(world.alice, hello(world))
    assert first.told == second.told == [receipt.msg_id]


async def test_a_failing_listener_fails_neither_the_send_nor_the_others(world: World) -> None:
    broken, fine = Recorder(fail=True), Recorder()
    world.messages.listeners = [broken, fine]
    receipt, replayed = await world.messages.send(world.alice, hello(world))
    assert not replayed and fine.told == [receipt.msg_id]


async def test_a_failed_step_still_tells_the_listeners_once(world: World) -> None:
    """The send is stored when a step fails: devices and push learn of it then, since the
    retry that redoes the step is a replay."""
    step, listener = FailingStep(failures=1), Recorder()
    world.messages.steps, world.messages.listeners = [step], [listener]
    with pytest.raises(Unavailable):
        await world.messages.send(world.alice, hello(world))
    assert len(listener.told) == 1
    receipt, replayed = await world.messages.send(world.alice, hello(world))
    assert replayed and step.done == [True]
    assert listener.told == [receipt.msg_id]


async def test_sends_check_the_recipient_exists(world: World) -> None:
    stranger = world.ids.next_id()
    with pytest.raises(NotFound):
        await world.messages.send(world.alice, hello(world, to=stranger))
    # A "no" is not remembered: once the account exists, sends to it work.
    await world.accounts.create_user(User(stranger, "carol", "Carol", "hash", 0))
    _, replayed = await world.messages.send(world.alice, hello(world, "k2", to=stranger))
    assert not replayed


async def limited(world: World, db: SqliteDatabase, clock: ManualClock, rate: float,
                  burst: int) -> MessageService:
    return MessageService(SqliteInboxStore(db), world.accounts, world.ids.next_id, clock,
                          limiter=MemoryRateLimiter(clock), limits=SendLimits(rate, burst))


async def test_the_send_limit_refuses_past_the_burst_per_user(
    world: World, db: SqliteDatabase, clock: ManualClock
) -> None:
    messages = await limited(world, db, clock, rate=2.0, burst=3)
    for n in range(3):
        await messages.send(world.alice, hello(world, f"c{n}"))
    with pytest.raises(RateLimited) as info:
        await messages.send(world.alice, hello(world, "c3"))
    assert info.value.status == 429 and info.value.code == "rate_limited"
    assert info.value.retry_after_s == pytest.approx(0.5)
    assert (info.value.retry_after, info.value.retry_after_ms) == (1, 500)
    await messages.send(world.bob, hello(world, to=world.alice.user_id))  # a bucket of its own
    clock.advance(0.5)
    await messages.send(world.alice, hello(world, "c3"))  # a retry after the wait goes through


async def test_a_malformed_send_costs_no_token(
    world: World, db: SqliteDatabase, clock: ManualClock
) -> None:
    messages = await limited(world, db, clock, rate=1.0, burst=1)
    with pytest.raises(TooLarge):
        await messages.send(world.alice, SendRequest("x" * 16385, "k", world.bob.user_id))
    with pytest.raises(InvalidInput):
        await messages.send(world.alice, hello(world, ""))
    await messages.send(world.alice, hello(world))  # the bad ones cost nothing
    with pytest.raises(RateLimited):
        await messages.send(world.alice, hello(world, "k2"))


async def test_a_device_s_sends_are_stored_in_order_each_with_its_own_answer(
    world: World, db: SqliteDatabase, clock: ManualClock
) -> None:
    messages = await limited(world, db, clock, rate=1.0, burst=4)
    requests = [hello(world, "a"), hello(world, ""), hello(world, "b"),
                hello(world, "c", to=world.ids.next_id()), hello(world, "a"),
                hello(world, "d"), hello(world, "e")]
    outcomes = await messages.send_many(world.alice, requests)
    kinds = [type(o).__name__ if not isinstance(o, tuple) else ("replay" if o[1] else "sent")
             for o in outcomes]
    # malformed (no token), then 4 tokens for a, b, c (unknown recipient), a again; d and e
    # are refused; the repeated "a" is a replay of the first.
    assert kinds == ["sent", "InvalidInput", "sent", "NotFound", "replay", "RateLimited",
                     "RateLimited"]
    first, second = outcomes[0], outcomes[2]
    assert isinstance(first, tuple) and isinstance(second, tuple)
    assert outcomes[4] == (first[0], True)
    assert first[0].msg_id < second[0].msg_id and first[0].id < second[0].id


@dataclass
class CountingLookup:
    users: set[int]
    calls: int = 0

    async def get_user(self, user_id: int) -> User | None:
        self.calls += 1
        return User(user_id, "u", "U", "h", 0) if user_id in self.users else None


async def test_known_users_remember_yes_not_no_and_stay_bounded() -> None:
    lookup = CountingLookup({1, 2, 3})
    known = KnownUsers(lookup, capacity=2)
    assert [await known.exists(uid) for uid in (1, 1, 9, 9)] == [True, True, False, False]
    assert lookup.calls == 3  # 1 once, 9 twice
    await known.exists(2)
    await known.exists(1)  # 1 is now the most recently used; 2 the least
    await known.exists(3)  # over capacity: 2 goes
    calls = lookup.calls
    assert await known.exists(1) and await known.exists(3)
    assert lookup.calls == calls
    assert await known.exists(2)
    assert lookup.calls == calls + 1
