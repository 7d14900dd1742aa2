"""Redis ``LiveBus``: which node holds which device's connection, and delivery between nodes.

- Registry: hash ``conn:{u:<user_id>}``, field ``<device_id>:<node_id>``, value the Unix-ms
  expiry. Each node refreshes its own fields every ``ttl_s / 3``; a node that dies stops
  refreshing and its fields count as gone once expired (readers ignore them). The key itself
  expires ``2 * ttl_s`` after the last refresh. Registering reads the hash in the same
  MULTI as it writes its field, so exactly one of two concurrent first connections of a
  user sees "nobody was online" (presence's "came online"); unregistering likewise.
- Node liveness: set ``bus:nodes`` lists the nodes; ``alive:{n:<node>}`` (PX ``ttl_s``,
  refreshed with the fields) says a node still runs; set ``nconn:{n:<node>}`` indexes its
  registrations (``<user>:<device>``). Every node sweeps every ``ttl_s / 4``: a listed node
  without its alive key is dead; the sweeper that wins ``SREM bus:nodes`` removes its fields
  and reports users left with no live connection to the ``on_expired`` handlers. So a user
  of a node that died is offline at most ``ttl_s + ttl_s / 4`` after the node's last refresh;
  with ``ttl_s = 2`` heartbeat intervals that is inside invariant 6's 3 intervals.
- Delivery: each node subscribes to channel ``node:<node_id>``. ``publish`` hands the events
  of users connected to this node straight to its handlers, and one Lua call (``ROUTE``)
  reads every user's registry in Redis and sends one ``PUBLISH`` per other node holding one
  of them: no registry crosses the wire, and a node never hears its own events back. The
  payload is JSON ``[[user_id, event], ...]``, each item encoded once by the publisher;
  events are opaque to the bus.

Delivery is best effort (Redis pub/sub does not store messages): a session that misses an
event notices the gap in positions and re-reads the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.bus import Event, ExpiryHandler, Handler
from idgen.clock import SYSTEM_CLOCK, Clock
from idgen.tasks import stop_tasks
from inbox.core.errors import Unavailable, dependency_failed

log = logging.getLogger(__name__)


def conn_key(user_id: int) -> str:
    """The registry hash of one user's live connections."""
    return f"conn:{{u:{user_id}}}"


def node_channel(node_id: str) -> str:
    """The pub/sub channel a node listens on."""
    return f"node:{node_id}"


NODES_KEY = "bus:nodes"
"""The set of nodes that registered connections (swept when their alive key is gone)."""


def alive_key(node_id: str) -> str:
    """Exists (with a TTL) while the node keeps refreshing."""
    return f"alive:{{n:{node_id}}}"


def node_conns_key(node_id: str) -> str:
    """The set of ``<user>:<device>`` registrations a node holds."""
    return f"nconn:{{n:{node_id}}}"


def registry_ttl_s(heartbeat_interval_ms: int) -> float:
    """Registration lifetime for a heartbeat interval: 2 intervals, so that with a sweep
    every quarter of it a dead node's users are offline within 2.5 intervals (invariant 6
    allows 3)."""
    return 2 * heartbeat_interval_ms / 1000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _unavailable(exc: Exception) -> Unavailable:
    """The 503 for a registry call Redis did not answer."""
    return dependency_failed("Redis", "connection registry", exc)


ROUTE = """
-- KEYS: the registry hash of each user. ARGV: this node, now (ms), then per user its items
-- (comma-joined JSON arrays). Publishes one JSON array per other node with a live field.
local here, now = ARGV[1], tonumber(ARGV[2])
local payloads, nodes = {}, {}
for i = 1, #KEYS do
  local registry = redis.call('HGETALL', KEYS[i])
  local told = {}
  for j = 1, #registry, 2 do
    local node = string.match(registry[j], '^[^:]*:(.*)$')
    if node and node ~= here and not told[node] and tonumber(registry[j + 1]) > now then
      told[node] = true
      if not payloads[node] then payloads[node] = {}; nodes[#nodes + 1] = node end
      local items = payloads[node]
      items[#items + 1] = ARGV[2 + i]
    end
  end
end
for _, node in ipairs(nodes) do
  redis.call('PUBLISH', 'node:' .. node, '[' .. table.concat(payloads[node], ',') .. ']')
end
return #nodes
"""
"""Route events to the other nodes holding a live connection of their users (see the module
docstring); replies how many nodes were published to."""


class RedisLiveBus:
    """``gateway.bus.LiveBus`` over Redis (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        node_id: str,
        ttl_s: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Route through ``redis`` as node ``node_id``; registrations live ``ttl_s``."""
        if ":" in node_id:
            node_id = node_id.replace(":", "_")  # fields are "<device>:<node>"
        self._redis = redis
        self.node_id = node_id
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self._handlers: list[Handler] = []
        self._expiry_handlers: list[ExpiryHandler] = []
        self._local: Counter[tuple[int, int]] = Counter()
        self._per_user: Counter[int] = Counter()  # local connections per user
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self._route = redis.register_script(ROUTE)

    async def publish(self, user_ids_to_events: dict[int, list[Event]]) -> None:
        """Send each user's events to every node holding a live connection of that user:
        this node's own connections at once, the others through Redis (``ROUTE``)."""
        users = [uid for uid, events in user_ids_to_events.items() if events]
        if not users:
            return
        for uid in users:
            if self._per_user.get(uid):
                for event in user_ids_to_events[uid]:
                    self._dispatch(uid, event)
        items = [",".join(json.dumps([uid, event], separators=(",", ":"))
                          for event in user_ids_to_events[uid]) for uid in users]
        try:
            await self._route(keys=[conn_key(uid) for uid in users],
                              args=[self.node_id, self._clock.now_ms(), *items])
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    @staticmethod
    def _live(registry: dict[Any, Any], now_ms: int) -> list[tuple[int, str]]:
        """(device, node) pairs of a registry hash whose expiry is still ahead."""
        out = []
        for field, expiry in registry.items():
            device, _, node = _text(field).partition(":")
            if int(_text(expiry)) > now_ms:
                out.append((int(device), node))
        return out

    async def register(self, user_id: int, device_id: int) -> bool:
        """Record a connection of the device on this node (refreshed until closed); True
        when no node held a live connection of the user before (it came online).

        ``Unavailable`` when Redis does not answer: then nothing is recorded, so the refresh
        loop never writes the device back once Redis returns.
        """
        held = self._per_user[user_id] > 0
        # Counted before the first await, so a concurrent register of the user sees it held.
        self._local[(user_id, device_id)] += 1
        self._per_user[user_id] += 1
        now = self._clock.now_ms()
        try:
            await self._redis.sadd(node_conns_key(self.node_id), f"{user_id}:{device_id}")
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(conn_key(user_id))
                pipe.hset(conn_key(user_id), f"{device_id}:{self.node_id}", now + self._ttl_ms)
                pipe.pexpire(conn_key(user_id), 2 * self._ttl_ms)
                before, *_ = await pipe.execute()
        except BaseException as exc:  # Redis down, or cancelled: not recorded after all
            # A field the attempt may have written expires within ttl, unrefreshed.
            self._drop_local(user_id, device_id)
            if isinstance(exc, RedisError | OSError):
                raise _unavailable(exc) from exc
            raise
        if held:
            return False
        # This node held none of the user's connections: its own fields are stale leftovers
        # of an earlier run under the same node id.
        return not [n for _, n in self._live(before, now) if n != self.node_id]

    async def unregister(self, user_id: int, device_id: int) -> bool:
        """Forget one of this node's connections of the device; True when the user has no
        live connection left on any node (it went offline).

        ``Unavailable`` when Redis does not answer: the connection is forgotten here all the
        same (no longer refreshed), so its field expires within ttl.
        """
        if not self._drop_local(user_id, device_id):
            return False  # another socket of the device remains here, or none was held
        try:
            await self._redis.srem(node_conns_key(self.node_id), f"{user_id}:{device_id}")
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(conn_key(user_id), f"{device_id}:{self.node_id}")
                pipe.hgetall(conn_key(user_id))
                _, after = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return not self._live(after, self._clock.now_ms())

    def _drop_local(self, user_id: int, device_id: int) -> bool:
        """Take one connection of the device off this node's counters; True when it was the
        device's last one here (its registry field is then this node's to remove)."""
        key = (user_id, device_id)
        if key not in self._local:
            return False
        self._per_user[user_id] -= 1
        if self._per_user[user_id] <= 0:
            del self._per_user[user_id]
        self._local[key] -= 1
        if self._local[key] > 0:
            return False
        del self._local[key]
        return True

    async def refresh(self) -> None:
        """Re-register every local connection now (the refresh loop does it every ttl / 3)."""
        await self._write(list(self._local))

    async def online_devices(self, user_id: int) -> set[int]:
        """Devices of the user with an unexpired registration on any node."""
        (registry,) = await self._registries([user_id])
        return {device for device, _ in self._live(registry, self._clock.now_ms())}

    async def online_users(self, user_ids: Iterable[int]) -> set[int]:
        """Those of ``user_ids`` with an unexpired registration (one pipeline)."""
        users = list(dict.fromkeys(user_ids))
        if not users:
            return set()
        registries = await self._registries(users)
        now = self._clock.now_ms()
        return {uid for uid, reg in zip(users, registries, strict=True) if self._live(reg, now)}

    async def _registries(self, users: list[int]) -> list[dict[Any, Any]]:
        """The registry hashes of ``users``, in order (one pipeline); ``Unavailable`` (503)
        when Redis does not answer."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for uid in users:
                    pipe.hgetall(conn_key(uid))
                registries: list[dict[Any, Any]] = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return registries

    def on_expired(self, handler: ExpiryHandler) -> None:
        """Await ``handler`` for users whose last registrations died with their node."""
        self._expiry_handlers.append(handler)

    def subscribe(self, handler: Handler) -> None:
        """Call ``handler(user_id, event)`` for every event addressed to this node."""
        self._handlers.append(handler)

    async def start(self) -> None:
        """Subscribe to this node's channel, announce the node, start refreshing and sweeping."""
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(node_channel(self.node_id))
        await self._write([])
        self._tasks = [
            asyncio.create_task(self._listen(), name=f"bus-listen-{self.node_id}"),
            # Re-register local connections every ttl/3; sweep dead nodes every ttl/4.
            asyncio.create_task(self._every(self._ttl_ms / 3000, self.refresh),
                                name=f"bus-refresh-{self.node_id}"),
            asyncio.create_task(self._every(self._ttl_ms / 4000, self.sweep),
                                name=f"bus-sweep-{self.node_id}"),
        ]

    async def close(self) -> None:
        """Stop listening and refreshing; drop this node's registrations."""
        await stop_tasks(*self._tasks)
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
                pipe.srem(NODES_KEY, self.node_id)
                pipe.delete(node_conns_key(self.node_id), alive_key(self.node_id))
                await pipe.execute()
        self._local.clear()
        self._per_user.clear()
        self._handlers.clear()
        self._expiry_handlers.clear()

    async def _write(self, pairs: list[tuple[int, int]]) -> None:
        """Refresh this node's alive key, its listing and the given registrations."""
        expiry = self._clock.now_ms() + self._ttl_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(alive_key(self.node_id), 1, px=self._ttl_ms)
            pipe.sadd(NODES_KEY, self.node_id)
            for uid, device in pairs:
                pipe.hset(conn_key(uid), f"{device}:{self.node_id}", expiry)
                pipe.pexpire(conn_key(uid), 2 * self._ttl_ms)
                pipe.sadd(node_conns_key(self.node_id), f"{uid}:{device}")
            await pipe.execute()

    async def _every(self, period_s: float, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` every ``period_s`` for good, surviving Redis blips."""
        while True:
            await self._clock.sleep(period_s)
            try:
                await work()
            except (RedisError, OSError) as exc:
                log.warning("live bus %s failed: %s", work.__name__, exc)

    async def sweep(self) -> None:
        """Clean up after every listed node whose alive key expired (it died)."""
        others = [n for n in map(_text, await self._redis.smembers(NODES_KEY))
                  if n != self.node_id]
        if not others:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for node in others:
                pipe.exists(alive_key(node))
            alive = await pipe.execute()
        for node, is_alive in zip(others, alive, strict=True):
            if not is_alive and await self._redis.srem(NODES_KEY, node):  # one sweeper wins
                await self._bury(node)

    async def _bury(self, node: str) -> None:
        """Remove a dead node's registrations; report users it leaves with none."""
        members = await self._redis.smembers(node_conns_key(node))
        await self._redis.delete(node_conns_key(node))
        lost: defaultdict[int, set[int]] = defaultdict(set)
        for member in map(_text, members):
            user, _, device = member.partition(":")
            lost[int(user)].add(int(device))
        log.info("live bus: node %s died holding %d users", node, len(lost))
        for uid, devices in lost.items():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(conn_key(uid), *[f"{device}:{node}" for device in devices])
                pipe.hgetall(conn_key(uid))
                _, registry = await pipe.execute()
            now = self._clock.now_ms()
            if self._live(registry, now):
                continue
            for handler in self._expiry_handlers:
                try:  # the dead node refreshed last at least ttl ago
                    await handler(uid, devices, now - self._ttl_ms)
                except Exception:
                    log.exception("expiry handler failed for user %s", uid)

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
