"""Presence decisions, sans-I/O: which ``presence`` notices to send, and when.

The adapter (``gateway.presence_service``) feeds this tracker the live bus registry's
transitions ("came online": no device was online before; "still online"; "went offline": no
device is left) at the moment they happen, and does what it returns. The tracker keeps, per
user, what this node last told contacts (``published``) and what is true now
(``observed``), and holds a change back while:

- it is a *clean* offline (the socket closed normally) less than ``settle_ms`` old: a client
  that reconnects within that window (app switch, network hand-over) was never offline for its
  contacts, so an offline followed by online within the window sends nothing;
- a notice for the user went out less than ``min_gap_ms`` ago: at most one notice per user per
  window, so a flapping client cannot start a storm.

A held-back change becomes *due*; the adapter then re-reads the registry (another node may
have taken the user over meanwhile) and calls ``confirm`` with the fresh truth. A silent death
(heartbeat timeout, dead node) is observed with ``settle=False``: the silence already lasted
longer than any settle window, and invariant 6 bounds how late the offline may be.

Nodes do not share this state: a user moving between nodes may cause a duplicate "online"
(harmless: frames carry the status, not a delta); re-checking the registry before a held-back
notice keeps a node from announcing an offline that another node's connection contradicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.wire import rfc3339
from idgen.clock import Clock


class Status(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Notice:
    """Tell the user's contacts its new status; ``last_seen_ms`` is when it was last online."""

    user_id: int
    status: Status
    last_seen_ms: int


@dataclass(slots=True)
class _UserState:
    observed: Status
    last_seen_ms: int
    published: Status | None = None  # None: this node has told nobody anything yet
    published_at_ms: int = 0
    due_ms: int | None = None  # set while observed != published


class PresenceTracker:
    """Per-node presence bookkeeping (see the module docstring). Not thread-safe; no I/O.

    It is fed the registry's transitions in the order they happened: ``came_online`` (no
    device of the user was online before this connection), ``still_online`` (a connection
    while others are online), ``went_offline`` (the last connection is gone).
    """

    def __init__(self, clock: Clock, settle_ms: int, min_gap_ms: int) -> None:
        """``settle_ms``: how long a clean offline waits for a reconnect; ``min_gap_ms``: the
        least time between two notices for one user."""
        self._clock = clock
        self.settle_ms = settle_ms
        self.min_gap_ms = min_gap_ms
        self._users: dict[int, _UserState] = {}

    def came_online(self, user_id: int) -> Notice | None:
        """No device was online before this one: the notice to send now, or None.

        An offline held back here never reached contacts, so a reconnect within the settle
        window cancels it silently. Otherwise contacts may have been told "offline" (maybe by
        another node), so "online" goes out, at most once per ``min_gap_ms``.
        """
        now = self._clock.now_ms()
        state = self._state(user_id, Status.ONLINE, now)
        if state.observed is Status.OFFLINE and state.due_ms is not None:
            state.observed, state.due_ms, state.last_seen_ms = Status.ONLINE, None, now
            return None
        state.observed, state.last_seen_ms = Status.ONLINE, now
        return self._publish_or_hold(user_id, state, now, now)

    def still_online(self, user_id: int) -> None:
        """A connection while another device is online: an offline held back is void."""
        now = self._clock.now_ms()
        state = self._state(user_id, Status.ONLINE, now)
        if state.observed is Status.OFFLINE:
            state.due_ms = None
        state.observed, state.last_seen_ms = Status.ONLINE, now

    def went_offline(self, user_id: int, *, settle: bool, at_ms: int | None = None
                     ) -> Notice | None:
        """No device is online any more (since ``at_ms``, default now): the notice to send
        now, or None. ``settle`` (a clean close) holds it back for ``settle_ms``."""
        now = self._clock.now_ms()
        at = now if at_ms is None else at_ms
        state = self._state(user_id, Status.OFFLINE, at)
        held = state.due_ms if state.observed is Status.OFFLINE else None
        state.observed, state.last_seen_ms = Status.OFFLINE, max(state.last_seen_ms, at)
        if state.published is Status.OFFLINE:
            state.due_ms = None
            return None
        earliest = now + (self.settle_ms if settle else 0)
        if held is not None:
            earliest = min(held, earliest)  # a repeated offline never delays it
        return self._publish_or_hold(user_id, state, now, earliest)

    def due(self, *, everything: bool = False) -> list[int]:
        """Users whose held-back change may go out now (``everything``: every held-back
        change, for a node shutting down); the caller must ``confirm`` each.

        Also forgets users who are offline, told so, and quiet for longer than ``min_gap_ms``
        (so the tracker holds only users that were recently active on this node).
        """
        now = self._clock.now_ms()
        out: list[int] = []
        for user_id, state in list(self._users.items()):
            if state.due_ms is not None and (everything or state.due_ms <= now):
                state.due_ms = None
                out.append(user_id)
            elif (state.due_ms is None and state.published is Status.OFFLINE
                  and now - state.published_at_ms > self.min_gap_ms):
                del self._users[user_id]
        return out

    def confirm(self, user_id: int, status: Status) -> Notice | None:
        """The registry's answer for a due user: the notice to send now, or None when
        contacts already know ``status``."""
        now = self._clock.now_ms()
        state = self._state(user_id, status, now)
        if status is Status.ONLINE or state.observed is Status.ONLINE:
            state.last_seen_ms = now  # it was online until at least now
        state.observed, state.due_ms = status, None
        if status is state.published:
            return None
        if state.published is None and status is Status.ONLINE:
            # Nothing told from here, and it is online: whoever connected it said so.
            state.published, state.published_at_ms = Status.ONLINE, now
            return None
        return self._publish(user_id, state, now)

    def forget(self, user_id: int) -> None:
        """Drop the user's state (its connections live on another node, which is in charge)."""
        self._users.pop(user_id, None)

    def pending(self, user_id: int) -> bool:
        """Whether a change of the user is held back."""
        state = self._users.get(user_id)
        return state is not None and state.due_ms is not None

    def tracked(self) -> int:
        """How many users this tracker holds state for."""
        return len(self._users)

    def _state(self, user_id: int, status: Status, at_ms: int) -> _UserState:
        state = self._users.get(user_id)
        if state is None:
            state = self._users[user_id] = _UserState(status, at_ms)
        return state

    def _publish_or_hold(self, user_id: int, state: _UserState, now: int, earliest: int
                         ) -> Notice | None:
        if state.published is not None:
            earliest = max(earliest, state.published_at_ms + self.min_gap_ms)
        if earliest <= now:
            return self._publish(user_id, state, now)
        state.due_ms = earliest
        return None

    def _publish(self, user_id: int, state: _UserState, now: int) -> Notice:
        state.published, state.published_at_ms, state.due_ms = state.observed, now, None
        last_seen = now if state.observed is Status.ONLINE else state.last_seen_ms
        return Notice(user_id, state.observed, last_seen)


def presence_frame(notice: Notice) -> dict[str, Any]:
    """The ``presence`` frame contacts receive (docs/websocket.md)."""
    return {"op": "presence", "user_id": str(notice.user_id), "status": notice.status.value,
            "last_seen": rfc3339(notice.last_seen_ms)}
