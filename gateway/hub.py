"""This node's live connections, indexed by user and device, fed by the live bus."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gateway import frames
from gateway.bus import Event, LiveBus
from gateway.connection import CLOSE_UNAUTHORIZED, Connection


class Hub:
    """Routes bus events to the connections of a user on this node."""

    def __init__(self, bus: LiveBus) -> None:
        self._bus = bus
        self._by_user: defaultdict[int, set[Connection]] = defaultdict(set)
        bus.subscribe(self.dispatch)

    def connections(self, user_id: int) -> set[Connection]:
        return set(self._by_user.get(user_id, ()))

    def all(self) -> list[Connection]:
        """Every connection on this node."""
        return [conn for conns in self._by_user.values() for conn in conns]

    def count(self) -> int:
        return sum(len(conns) for conns in self._by_user.values())

    async def add(self, conn: Connection) -> bool:
        """Index and register the connection; True when its user just came online.

        If the bus refuses (``Unavailable``) the connection is not kept: nothing to remove.
        """
        # Indexed first: events for the user may arrive while the registration awaits.
        self._by_user[conn.caller.user_id].add(conn)
        try:
            return await self._bus.register(conn.caller.user_id, conn.caller.device_id)
        except BaseException:
            self._forget(conn)
            raise

    async def remove(self, conn: Connection) -> bool:
        """Drop the connection; True when its user has no live connection left anywhere.

        The connection leaves this node's index even when the bus raises.
        """
        self._forget(conn)
        return await self._bus.unregister(conn.caller.user_id, conn.caller.device_id)

    def _forget(self, conn: Connection) -> None:
        conns = self._by_user.get(conn.caller.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._by_user[conn.caller.user_id]

    def dispatch(self, user_id: int, event: Event) -> None:
        """Handle one bus event for ``user_id`` (entries, logouts, relayed frames)."""
        kind = event.get("type")
        for conn in self.connections(user_id):
            if kind == "entry":
                conn.on_entry(event["entry"], int(event["id"]), int(event["prev"]))
            elif kind == "logout" and conn.caller.device_id == int(event["device_id"]):
                conn.send(frames.error("unauthorized", "this device was logged out"))
                conn.close(CLOSE_UNAUTHORIZED, "logged out")
            elif kind == "frame" and conn.caller.device_id != event.get("skip_device"):
                conn.send(event["frame"])

    async def end(self, user_id: int, device_id: int) -> None:
        """Close the device's sockets on every node (a logout): 4001 after an error frame."""
        await self._bus.publish({user_id: [{"type": "logout", "device_id": device_id}]})

    async def online_devices(self, user_id: int) -> set[int]:
        """Devices of the user with a live connection on any node."""
        return await self._bus.online_devices(user_id)

    async def relay(self, users_to_frames: dict[int, dict[str, Any]],
                    skip_device: int | None = None) -> None:
        """Send a frame (typing, presence) to every connection of each user, across nodes."""
        await self._bus.publish(
            {u: [{"type": "frame", "frame": f, "skip_device": skip_device}]
             for u, f in users_to_frames.items()}
        )
