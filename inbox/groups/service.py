"""Groups: who may create, read and change a group, and the ``group_event`` entries that
tell every member's inbox about each membership change.

Membership itself (the cap, join order, owner hand-over) is decided atomically by the
``GroupStore``; this service checks permissions, validates input and announces changes.
It is also the ``Recipients`` of ``MessageService``: a send ``to_group`` fans out to every
current member. Announcements go through ``MessageService.append`` so that live delivery and
push listeners see them like any other entry.

A change commits before its announcement, so the announcement can fail (a 503) after the
change was made; the retry then changes nothing. So every change or no-op announces the
group's latest change as the store recorded it, keyed by the group's version
(``entry_keys.group_event_key``): the retry re-announces the change exactly as it happened
(with its join points), and when it had been announced the replayed key writes nothing.
Limits: a change whose announcement failed is announced again only while it is the group's
latest (a later change overwrites the record), by whoever touches the group next, in that
caller's name. A create is retried into the same group only when the client gives a
``client_group_id`` (bound to the group id before anything else is written); without one, a
failed create leaves a group nobody is told about, and the retry creates another one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from idgen.clock import Clock
from inbox.accounts.port import AccountStore
from inbox.core.errors import Forbidden, InvalidInput, NotFound
from inbox.core.ids import group_conversation_id
from inbox.core.models import (
    MAX_GROUP_MEMBERS,
    AppendBatch,
    Caller,
    EntryDraft,
    EntryKind,
    Group,
    GroupChange,
    MembershipChange,
)
from inbox.groups.membership import GroupEvent, created, group_full, new_group
from inbox.groups.port import GroupStore
from inbox.messages.entry_keys import group_event_key
from inbox.messages.service import MessageService

MAX_NAME_CHARS = 100
MAX_CLIENT_KEY_CHARS = 128


def clean_name(name: str) -> str:
    """The group name without surrounding whitespace; 1..100 characters, else InvalidInput."""
    stripped = name.strip()
    if not 1 <= len(stripped) <= MAX_NAME_CHARS:
        raise InvalidInput(f"group name must be 1..{MAX_NAME_CHARS} characters")
    return stripped


def group_event_draft(caller: Caller, group: Group, event: GroupEvent,
                      user_ids: Sequence[int], msg_id: int, now_ms: int) -> EntryDraft:
    """The ``group_event`` entry announcing ``event`` (ids stay ints; ``gateway.wire`` turns
    them into strings). ``group`` is the group after the change."""
    return EntryDraft(
        kind=EntryKind.GROUP_EVENT,
        msg_id=msg_id,
        conversation_id=group_conversation_id(group.group_id),
        sender_id=caller.user_id,
        sender_device_id=caller.device_id,
        created_at_ms=now_ms,
        group={
            "group_id": group.group_id,
            "name": group.name,
            "owner_id": group.owner_id,
            "member_ids": list(group.member_ids),
            "event": event.value,
            "user_ids": list(user_ids),
        },
    )


def _is_removal_of(change: GroupChange | None, user_id: int) -> bool:
    return (change is not None and change.event == GroupEvent.MEMBER_REMOVED.value
            and user_id in change.user_ids)


def require_member(caller: Caller, group: Group) -> None:
    """Forbidden unless the caller is a current member (invariant 5)."""
    if caller.user_id not in group.member_ids:
        raise Forbidden(f"not a member of group {group.group_id}")


class GroupService:
    """Creating, reading and changing groups; the audience of group sends."""

    def __init__(self, groups: GroupStore, accounts: AccountStore, messages: MessageService,
                 next_id: Callable[[], int], clock: Clock) -> None:
        self._groups = groups
        self._accounts = accounts
        self._messages = messages
        self._next_id = next_id
        self._clock = clock

    async def create(self, caller: Caller, name: str, member_ids: Sequence[int]) -> Group:
        """Create a group owned by the caller (a member too). 422 for a bad name, 404 for an
        unknown member id, 409 ``group_full`` past 100 members."""
        return await self._create(caller, self._next_id(), clean_name(name), member_ids)

    async def create_once(self, caller: Caller, name: str, member_ids: Sequence[int],
                          client_key: str | None) -> tuple[Group, bool]:
        """``create`` made idempotent by the caller's ``client_key``: the group and "was a
        replay". A retry answers the group the first attempt made (403 if the caller has
        left it since), finishing what that attempt left undone."""
        name = clean_name(name)
        group_id = self._next_id()
        if client_key is None:
            return await self._create(caller, group_id, name, member_ids), False
        if not 1 <= len(client_key) <= MAX_CLIENT_KEY_CHARS:
            raise InvalidInput(f"client_group_id must be 1..{MAX_CLIENT_KEY_CHARS} characters")
        bound = await self._groups.claim_create_key(caller.user_id, client_key, group_id)
        if bound != group_id and (existing := await self._groups.get(bound)) is not None:
            require_member(caller, existing)
            change = await self._groups.add_members(bound, [])  # a no-op: the latest change,
            await self._announce_latest(caller, change)  # announced again if it was lost
            return change.group, True
        # Unbound before, or bound by an attempt that stored no group: create it under that id.
        return await self._create(caller, bound, name, member_ids), False

    async def _create(self, caller: Caller, group_id: int, name: str,
                      member_ids: Sequence[int]) -> Group:
        group = new_group(group_id, name, caller.user_id, member_ids, self._clock.now_ms())
        await self._require_users(group.member_ids[1:])
        await self._groups.create(group)
        await self._announce(caller, group, created(group))
        return group

    async def get(self, caller: Caller, group_id: int) -> Group:
        """The group, for its members only: 404 unknown, 403 for anyone else."""
        group = await self._groups.get(group_id)
        if group is None:
            raise NotFound(f"no group {group_id}")
        require_member(caller, group)
        return group

    async def add_members(self, caller: Caller, group_id: int, user_ids: Sequence[int]
                          ) -> Group:
        """Any member may add users; ids already in are ignored, unknown ids -> 404, past the
        cap -> 409 ``group_full`` with nothing added. Returns the group after the change."""
        group = await self.get(caller, group_id)
        fresh = [uid for uid in dict.fromkeys(user_ids) if uid not in group.member_ids]
        if len(group.member_ids) + len(fresh) > MAX_GROUP_MEMBERS:  # the store re-checks
            raise group_full(group_id, len(group.member_ids) + len(fresh))
        await self._require_users(fresh)
        change = await self._groups.add_members(group_id, user_ids)
        await self._announce_latest(caller, change)
        return change.group

    async def remove_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        """The owner removes anyone, a member removes itself; anyone else -> 403. Removing
        someone who is not (or no longer) a member is a no-op, so a retry is harmless; that
        includes a former member repeating its own leave while it is the group's latest
        change (the retry of a leave answered 503 must still announce it)."""
        group = await self._groups.get(group_id)
        if group is None:
            raise NotFound(f"no group {group_id}")
        if caller.user_id not in group.member_ids and user_id == caller.user_id:
            change = await self._groups.remove_member(group_id, user_id)  # a no-op
            if not _is_removal_of(change.last, user_id):
                require_member(caller, change.group)  # 403: not its own last leave
            await self._announce_latest(caller, change)
            return
        require_member(caller, group)
        if user_id != caller.user_id and caller.user_id != group.owner_id:
            raise Forbidden("only the group's owner may remove other members")
        change = await self._groups.remove_member(group_id, user_id)
        await self._announce_latest(caller, change)

    async def _require_users(self, user_ids: Sequence[int]) -> None:
        users = await asyncio.gather(*(self._accounts.get_user(uid) for uid in user_ids))
        unknown = [uid for uid, user in zip(user_ids, users, strict=True) if user is None]
        if unknown:
            raise NotFound(f"no user {unknown[0]}")

    async def _announce_latest(self, caller: Caller, change: MembershipChange) -> None:
        """Announce the group's latest change: this call's, or when this call changed nothing
        the one before it again (a replay writing nothing, unless that announcement failed)."""
        if change.last is not None:
            await self._announce(caller, change.group, change.last)

    async def _announce(self, caller: Caller, group: Group, change: GroupChange) -> None:
        """Append one ``group_event`` entry announcing ``change`` (``group`` is the group after
        it) to every member's inbox, and a removed member's: its devices learn why the group
        went quiet. Keyed by the group's version: at most once per change."""
        event = GroupEvent(change.event)
        draft = group_event_draft(caller, group, event, change.user_ids, self._next_id(),
                                  self._clock.now_ms())
        removed = change.user_ids if event is GroupEvent.MEMBER_REMOVED else ()
        audience = tuple(dict.fromkeys([*group.member_ids, *removed]))
        if audience:
            await self._messages.append(AppendBatch(
                draft=draft, user_ids=audience,
                idempotency_key=group_event_key(group.group_id, change.version),
                receipt_for=audience[0],
            ))  # fmt: skip
