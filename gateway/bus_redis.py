"""Redis ``LiveBus``: which node holds which device's connection, and delivery between nodes.

- Registry: hash ``conn:{u:<user_id>}``, field ``<device_id>:<node_id>``, value the Unix-ms
  expiry. Each node refreshes its own fields every ``ttl_s / 3``; a node that dies stops
  refreshing and its fields count as gone once expired (readers ignore them; a refresh or
  a publish prunes them). The key itself expires ``2 * ttl_s`` after the last refresh.
- Delivery: each node subscribes to channel ``node:<node_id>``; ``publish`` looks the users up
  (one pipeline), groups events per node and sends one ``PUBLISH`` per node (a second
  pipeline). The payload is JSON ``[[user_id, event], ...]``; events are opaque to the bus.

Delivery is best effort (Redis pub/sub does not store messages): a session that misses an
event notices the gap in positions and re-reads the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.bus import Event, Handler

log = logging.getLogger(__name__)


def conn_key(user_id: int) -> str:
    """The registry hash of one user's live connections."""
    return f"conn:{{u:{user_id}}}"


def node_channel(node_id: str) -> str:
    """The pub/sub channel a node listens on."""
    return f"node:{node_id}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLiveBus:
    """``gateway.bus.LiveBus`` over Redis (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        node_id: str,
        ttl_s: float = 30.0,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        """Route through ``redis`` as node ``node_id``; registrations live ``ttl_s``."""
        if ":" in node_id:
            node_id = node_id.replace(":", "_")  # fields are "<device>:<node>"
        self._redis = redis
        self.node_id = node_id
        self._ttl_ms = int(ttl_s * 1000)
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._handlers: list[Handler] = []
        self._local: Counter[tuple[int, int]] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None

    async def publish(self, user_ids_to_events: dict[int, list[Event]]) -> None:
        """Send each user's events to every node holding a live connection of that user."""
        users = [uid for uid, events in user_ids_to_events.items() if events]
        if not users:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for uid in users:
                pipe.hgetall(conn_key(uid))
            registries = await pipe.execute()
        now = self._clock_ms()
        per_node: defaultdict[str, list[list[Any]]] = defaultdict(list)
        for uid, registry in zip(users, registries, strict=True):
            nodes = {node for _, node in self._live(registry, now)}
            for node in nodes:
                per_node[node] += [[uid, event] for event in user_ids_to_events[uid]]
        if not per_node:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for node, items in per_node.items():
                pipe.publish(node_channel(node), json.dumps(items, separators=(",", ":")))
            await pipe.execute()

    @staticmethod
    def _live(registry: dict[Any, Any], now_ms: int) -> list[tuple[int, str]]:
        """(device, node) pairs of a registry hash whose expiry is still ahead."""
        out = []
        for field, expiry in registry.items():
            device, _, node = _text(field).partition(":")
            if int(_text(expiry)) > now_ms:
                out.append((int(device), node))
        return out

    async def register(self, user_id: int, device_id: int) -> None:
        """Record that this node holds a connection of the device (refreshed until closed)."""
        self._local[(user_id, device_id)] += 1
        await self._write([(user_id, device_id)])

    async def unregister(self, user_id: int, device_id: int) -> None:
        """Forget one of this node's connections of the device."""
        key = (user_id, device_id)
        if self._local[key] > 1:
            self._local[key] -= 1
            return
        self._local.pop(key, None)
        await self._redis.hdel(conn_key(user_id), f"{device_id}:{self.node_id}")

    async def online_devices(self, user_id: int) -> set[int]:
        """Devices of the user with an unexpired registration on any node."""
        registry = await self._redis.hgetall(conn_key(user_id))
        return {device for device, _ in self._live(registry, self._clock_ms())}

    def subscribe(self, handler: Handler) -> None:
        """Call ``handler(user_id, event)`` for every event addressed to this node."""
        self._handlers.append(handler)

    async def start(self) -> None:
        """Subscribe to this node's channel and start the refresh task."""
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(node_channel(self.node_id))
        self._tasks = [
            asyncio.create_task(self._listen(), name=f"bus-listen-{self.node_id}"),
            asyncio.create_task(self._refresh(), name=f"bus-refresh-{self.node_id}"),
        ]

    async def close(self) -> None:
        """Stop listening and refreshing; drop this node's registrations."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe()
            await self._pubsub.aclose()
            self._pubsub = None
        with contextlib.suppress(RedisError, OSError):
            async with self._redis.pipeline(transaction=False) as pipe:
                for uid, device in self._local:
                    pipe.hdel(conn_key(uid), f"{device}:{self.node_id}")
                await pipe.execute()
        self._local.clear()
        self._handlers.clear()

    async def _write(self, pairs: list[tuple[int, int]]) -> None:
        expiry = self._clock_ms() + self._ttl_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            for uid, device in pairs:
                pipe.hset(conn_key(uid), f"{device}:{self.node_id}", expiry)
                pipe.pexpire(conn_key(uid), 2 * self._ttl_ms)
            await pipe.execute()

    async def _refresh(self) -> None:
        """Re-register every local connection each ``ttl / 3``; survive Redis blips."""
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                await self._write(list(self._local))
            except (RedisError, OSError) as exc:
                log.warning("live bus refresh failed: %s", exc)

    async def _listen(self) -> None:
        """Dispatch messages of this node's channel; a bad one is logged and skipped."""
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("live bus subscription failed: %s; resubscribing", exc)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                items = json.loads(message["data"])
                for user_id, event in items:
                    self._dispatch(int(user_id), event)
            except (ValueError, TypeError) as exc:
                log.warning("live bus dropped an undecodable message: %s", exc)

    def _dispatch(self, user_id: int, event: Event) -> None:
        for handler in self._handlers:
            try:
                handler(user_id, event)
            except Exception:
                log.exception("live bus handler failed for user %s", user_id)
