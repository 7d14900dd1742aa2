"""Live bus port: carries new inbox entries to whichever node holds a user's connections.

The embedded default runs one process, so ``LocalLiveBus`` hands events straight to this
node's handler; ``bus_redis.py`` does the same across nodes through Redis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

Event = dict[str, Any]
Handler = Callable[[int, Event], None]
ExpiryHandler = Callable[[int, set[int], int], Awaitable[None]]
"""``(user_id, device_ids, last_seen_ms)``: the user's last registrations expired."""


class LiveBus(Protocol):
    """Routes per-user events to the nodes holding that user's live connections.

    Delivery is best effort: a lost event only delays a device until its next ``sync``,
    because sessions detect gaps from entry positions and re-read the store.
    """

    async def publish(self, user_ids_to_events: dict[int, list[Event]]) -> None:
        """Deliver each user's events to every node holding one of its connections."""
        ...

    async def register(self, user_id: int, device_id: int) -> bool:
        """Record that this node holds a live connection of the device (refreshed).

        True when the user had no live connection on any node before: it just came online.
        Two concurrent registrations of one user never both answer True. ``Unavailable``
        when the registry cannot be reached; nothing is then recorded (the connection must
        not stay, nor come back, online).
        """
        ...

    async def unregister(self, user_id: int, device_id: int) -> bool:
        """Forget one of this node's connections of the device.

        True when the user has no live connection left on any node: it just went offline.
        ``Unavailable`` when the registry cannot be reached; the connection is forgotten on
        this node all the same, and its registration lapses by itself.
        """
        ...

    async def online_devices(self, user_id: int) -> set[int]:
        """Devices of the user with a live connection on any node."""
        ...

    async def online_users(self, user_ids: Iterable[int]) -> set[int]:
        """Those of ``user_ids`` with a live connection on any node (one round trip)."""
        ...

    def on_expired(self, handler: ExpiryHandler) -> None:
        """Await ``handler(user_id, device_ids, last_seen_ms)`` when registrations of a node
        that died (stopped refreshing) expire and leave the user with no live connection.

        Presence uses it to turn users offline that no node can unregister any more.
        """
        ...

    def subscribe(self, handler: Handler) -> None:
        """Call ``handler(user_id, event)`` for each event for a user on this node."""
        ...

    async def start(self) -> None:
        """Begin receiving events."""
        ...

    async def close(self) -> None:
        """Stop receiving events and release connections."""
        ...


class LocalLiveBus:
    """The single-process bus: publish calls the handler directly."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._devices: defaultdict[int, dict[int, int]] = defaultdict(dict)

    async def publish(self, user_ids_to_events: dict[int, list[Event]]) -> None:
        for user_id, events in user_ids_to_events.items():
            if user_id not in self._devices:
                continue
            for event in events:
                for handler in self._handlers:
                    handler(user_id, event)

    async def register(self, user_id: int, device_id: int) -> bool:
        came_online = user_id not in self._devices
        devices = self._devices[user_id]
        devices[device_id] = devices.get(device_id, 0) + 1
        return came_online

    async def unregister(self, user_id: int, device_id: int) -> bool:
        devices = self._devices.get(user_id)
        if devices is None or device_id not in devices:
            return False
        devices[device_id] -= 1
        if devices[device_id] <= 0:
            del devices[device_id]
        if not devices:
            del self._devices[user_id]
            return True
        return False

    async def online_devices(self, user_id: int) -> set[int]:
        return set(self._devices.get(user_id, {}))

    async def online_users(self, user_ids: Iterable[int]) -> set[int]:
        return {uid for uid in user_ids if uid in self._devices}

    def on_expired(self, handler: ExpiryHandler) -> None:
        """Never called: connections of this single process cannot outlive it."""
        return None

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()
