"""Live bus port: carries new inbox entries to whichever node holds a user's connections.

The embedded default runs one process, so ``LocalLiveBus`` hands events straight to this
node's handler; ``bus_redis.py`` does the same across nodes through Redis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

Event = dict[str, Any]
Handler = Callable[[int, Event], None]


class LiveBus(Protocol):
    """Routes per-user events to the nodes holding that user's live connections.

    Delivery is best effort: a lost event only delays a device until its next ``sync``,
    because sessions detect gaps from entry positions and re-read the store.
    """

    async def publish(self, user_ids_to_events: dict[int, list[Event]]) -> None:
        """Deliver each user's events to every node holding one of its connections."""
        ...

    async def register(self, user_id: int, device_id: int) -> None:
        """Record that this node holds a live connection of the device (refreshed)."""
        ...

    async def unregister(self, user_id: int, device_id: int) -> None:
        """Forget this node's connection of the device."""
        ...

    async def online_devices(self, user_id: int) -> set[int]:
        """Devices of the user with a live connection on any node."""
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

    async def register(self, user_id: int, device_id: int) -> None:
        devices = self._devices[user_id]
        devices[device_id] = devices.get(device_id, 0) + 1

    async def unregister(self, user_id: int, device_id: int) -> None:
        devices = self._devices.get(user_id)
        if devices is None or device_id not in devices:
            return
        devices[device_id] -= 1
        if devices[device_id] <= 0:
            del devices[device_id]
        if not devices:
            del self._devices[user_id]

    async def online_devices(self, user_id: int) -> set[int]:
        return set(self._devices.get(user_id, {}))

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()
