"""The typing relay without sockets: who gets the frame, who is refused, what is coalesced."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.typing_relay import TypingRelay, typing_audience, typing_frame, typing_key
from inbox.core.errors import Forbidden, InvalidInput, NotFound
from inbox.core.ids import ConversationRef, parse_conversation_id
from inbox.core.models import Caller
from inbox.ratelimit.limiter_memory import MemoryRateLimiter
from tests.push.support import ManualClock

ALICE, BOB, CAROL = Caller(1, 10), Caller(2, 20), Caller(3, 30)
DIRECT = "d:1:2"
GROUP = "g:77"


class MemoryParticipants:
    """Direct chats decided by their id; one group {1, 2, 3}."""

    groups = {77: [1, 2, 3]}

    async def require(self, caller: Caller, conversation_id: str) -> ConversationRef:
        ref = parse_conversation_id(conversation_id)
        if (members := await self.members(ref)) and caller.user_id not in members:
            raise Forbidden(f"not in {conversation_id}")
        return ref

    async def members(self, ref: ConversationRef) -> list[int]:
        if ref.group_id is None:
            assert ref.user_ids is not None
            return list(ref.user_ids)
        if ref.group_id not in self.groups:
            raise NotFound(f"no group {ref.group_id}")
        return self.groups[ref.group_id]


class RecordingRelay:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[int, dict[str, Any]], int]] = []

    async def relay(self, users_to_frames: dict[int, dict[str, Any]], skip_device: int) -> None:
        self.sent.append((users_to_frames, skip_device))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def relay() -> RecordingRelay:
    return RecordingRelay()


@pytest.fixture
def typing(clock: ManualClock, relay: RecordingRelay) -> TypingRelay:
    return TypingRelay(MemoryParticipants(), MemoryRateLimiter(clock), relay, interval_s=2.0)


def test_frame_and_audience_are_pure() -> None:
    assert typing_frame(DIRECT, 1) == {"op": "typing", "conversation_id": DIRECT, "user_id": "1"}
    assert typing_audience([1, 2, 3, 2], 2) == [1, 3]
    assert typing_audience([5, 5], 5) == []  # notes to self: nobody to tell
    assert typing_key(1, GROUP) == "typing:1:g:77"


async def test_direct_typing_goes_to_the_peer_only(typing: TypingRelay, relay: RecordingRelay
                                                   ) -> None:
    assert await typing.typing(ALICE, DIRECT) is True
    assert relay.sent == [({2: typing_frame(DIRECT, 1)}, ALICE.device_id)]


async def test_group_typing_goes_to_every_other_member(typing: TypingRelay,
                                                       relay: RecordingRelay) -> None:
    await typing.typing(BOB, GROUP)
    [(frames, _)] = relay.sent
    assert sorted(frames) == [1, 3] and frames[1] == typing_frame(GROUP, 2)


async def test_typing_within_the_interval_is_coalesced_per_conversation(
    typing: TypingRelay, relay: RecordingRelay, clock: ManualClock
) -> None:
    assert await typing.typing(ALICE, DIRECT) is True
    clock.advance(1.9)
    assert await typing.typing(ALICE, DIRECT) is False
    assert await typing.typing(ALICE, GROUP) is True  # another conversation: its own window
    assert await typing.typing(BOB, DIRECT) is True  # another sender: its own window
    clock.advance(0.1)
    assert await typing.typing(ALICE, DIRECT) is True
    assert len(relay.sent) == 4


async def test_a_burst_of_keystrokes_is_relayed_once(typing: TypingRelay,
                                                     relay: RecordingRelay) -> None:
    results = [await typing.typing(ALICE, DIRECT) for _ in range(5)]  # same instant
    assert results == [True, False, False, False, False]
    assert len(relay.sent) == 1


async def test_steady_typing_is_relayed_once_per_interval(
    typing: TypingRelay, relay: RecordingRelay, clock: ManualClock
) -> None:
    relayed_at = []
    for tick in range(25):  # a keystroke every 250 ms for 6 s, interval 2 s
        if await typing.typing(ALICE, DIRECT):
            relayed_at.append(tick * 250)
        clock.advance(0.25)
    assert relayed_at == [0, 2_000, 4_000, 6_000]
    assert len(relay.sent) == 4


async def test_notes_to_self_relay_nothing(typing: TypingRelay, relay: RecordingRelay) -> None:
    assert await typing.typing(ALICE, "d:1:1") is True
    assert relay.sent == []


@pytest.mark.parametrize(("caller", "cid", "error"), [
    (CAROL, DIRECT, Forbidden),
    (ALICE, "d:2:1", NotFound),
    (ALICE, "g:5", NotFound),
    (ALICE, "x:1", InvalidInput),
    (ALICE, "d:1:abc", InvalidInput),
])
async def test_outsiders_and_bad_ids_are_refused(typing: TypingRelay, relay: RecordingRelay,
                                                 caller: Caller, cid: str,
                                                 error: type[Exception]) -> None:
    for _ in range(2):  # refused every time, not coalesced into silence
        with pytest.raises(error):
            await typing.typing(caller, cid)
    assert relay.sent == []


def test_interval_must_be_positive(clock: ManualClock, relay: RecordingRelay) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        TypingRelay(MemoryParticipants(), MemoryRateLimiter(clock), relay, interval_s=0)
