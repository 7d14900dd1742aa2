"""The ``/v1/ws`` endpoint: auth at upgrade, hello, the receive loop with heartbeats, and
the drain of every socket when the node shuts down.

An upgrade is refused with an HTTP answer and the error envelope: 429 ``rate_limited`` with
``Retry-After`` past the client address's upgrade limit, 503 ``draining`` or ``overloaded``
with ``Retry-After`` when the node takes no new socket now (``gateway.admission``), 400 for a
malformed subprotocol offer, 401 for a missing, invalid or logged-out token (how a token is
presented: ``gateway.handshake``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import frames, metrics
from gateway.admission import Admission
from gateway.connection import (
    CLOSE_GOING_AWAY,
    CLOSE_HEARTBEAT,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    Connection,
)
from gateway.drain import reconnect_delays
from gateway.handlers import FrameHandlers
from gateway.handshake import SUBPROTOCOL, is_browser, read_upgrade, refusal_close_code
from gateway.hub import Hub
from gateway.presence_service import PresenceService
from gateway.sends import SendMany
from gateway.unacked import UnackedWatch
from idgen.clock import Clock
from inbox.accounts.port import AccountStore
from inbox.accounts.service import AccountService
from inbox.accounts.throttle import ClientThrottle, client_key
from inbox.core.errors import DomainError, Unauthorized, Unavailable
from inbox.core.models import Caller, InboxPage
from inbox.messages.port import InboxStore

log = logging.getLogger(__name__)

DRAIN_FLUSH_S = 2.0
"""How long a draining socket's sends in flight get to be stored and answered."""
DRAIN_CLOSE_S = 3.0
"""How long a drain then waits for its sockets' closing handshakes."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    heartbeat_interval_ms: int = 30_000
    queue_size: int = 256
    page_size: int = 200


class Gateway:
    """Serves WebSocket connections; one ``serve`` call per socket."""

    def __init__(
        self,
        config: GatewayConfig,
        auth: AccountService,
        accounts: AccountStore,
        inbox: InboxStore,
        hub: Hub,
        handlers: FrameHandlers,
        clock: Clock,
        throttle: ClientThrottle,
        presence: PresenceService | None = None,
        send_many: SendMany | None = None,
        admission: Admission | None = None,
        rng: random.Random | None = None,
        unacked: UnackedWatch | None = None,
    ) -> None:
        """``admission`` None: every upgrade is admitted until the node drains; ``unacked``
        watches live deliveries until acked (None: they are final)."""
        self.config = config
        self.presence = presence
        self._auth = auth
        self._accounts = accounts
        self._inbox = inbox
        self.hub = hub
        self.handlers = handlers
        self._clock = clock
        self._throttle = throttle
        self._send_many = send_many
        self.admission = admission or Admission(clock)
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self.unacked = unacked

    async def serve(self, ws: WebSocket) -> None:
        try:
            await self._throttle.upgrade(client_key(ws.client))
            self.admission.admit()
            upgrade = read_upgrade(ws.headers.get("authorization"),
                                   ws.scope.get("subprotocols", ()), ws.query_params.get("token"))
            caller = await self._auth.authenticate(upgrade.token)
        except DomainError as exc:
            await self._refuse(ws, exc)
            return
        await ws.accept(subprotocol=upgrade.subprotocol)
        conn = Connection(ws, caller, self._read_page, self.config.queue_size,
                          send_many=self._send_many,
                          watch=self.unacked.watch(caller) if self.unacked else None)
        # The token is checked once, at the upgrade: the socket ends when the token does.
        expires_at = self._auth.tokens.expires_at(upgrade.token or "")
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, expires_at - self._clock.now_ms() / 1000), _expire, conn)
        registered = silent = False
        try:
            try:  # the head before hello: every entry stored once the client has it is streamed
                conn.delivery.start_at(await self._inbox.head(caller.user_id))
            finally:  # hello is queued first, also before an error; it goes out once the
                # socket is registered (frames relayed meanwhile wait behind it): a client
                # that got hello is reachable from any node.
                conn.send(frames.hello(conn.session_id, self.config.heartbeat_interval_ms))
            window_s = self.admission.drain_window_s
            if window_s is not None:  # the drain began while this socket was being set up
                conn.send(frames.goaway(int(self._rng.uniform(0, window_s * 1000))))
                conn.close(CLOSE_GOING_AWAY, "server draining")
                return
            # No await from the check above to the hub's index (``hub.add`` indexes before it
            # awaits): a drain either finds this socket in the hub or it was seen here.
            came_online = await self.hub.add(conn)
            registered = True
            conn.start()
            if self.presence is not None:  # no await in between: presence sees registry order
                self.presence.connected(caller, came_online)
            # Entries stored since the head was read may have been published before this node
            # was registered for the user, to nobody: read them from the store.
            conn.delivery.catch_up()
            conn.schedule_pump()
            silent = await self._receive_loop(conn)
        except Unavailable as exc:  # registry or inbox down: nothing to serve, come back later
            conn.send(frames.error(exc.code, exc.message))
            conn.close(CLOSE_TRY_AGAIN, "service unavailable; reconnect later")
        finally:
            try:
                if registered:
                    went_offline = await self._remove(conn)
                    if self.presence is not None:
                        self.presence.disconnected(caller, went_offline, silent=silent)
            finally:
                expiry.cancel()
                await conn.finish()
            if self.presence is None:
                await self._touch(caller)

    async def drain(self, window_s: float, flush_s: float = DRAIN_FLUSH_S,
                    close_s: float = DRAIN_CLOSE_S) -> int:
        """Shutdown: admit no new socket, and tell every socket to go away with its own
        ``reconnect_after_ms`` in ``[0, window_s]`` (``gateway.drain``); each then gets the
        answers of its sends in flight and a ``1001`` close. Returns once the sockets are
        closed (or after ``flush_s + close_s``); how many there were."""
        self.admission.start_draining(window_s)
        conns = self.hub.all()
        delays = reconnect_delays(len(conns), int(window_s * 1000), self._rng)
        await asyncio.gather(*(conn.go_away(delay, flush_s)
                               for conn, delay in zip(conns, delays, strict=True)))
        deadline = self._clock.monotonic() + close_s
        while self.hub.count() and self._clock.monotonic() < deadline:
            await self._clock.sleep(0.05)
        return len(conns)

    async def _remove(self, conn: Connection) -> bool:
        """``hub.remove``; when the registry cannot answer, whether this node holds no
        other connection of the user (its registration lapses by itself)."""
        try:
            return await self.hub.remove(conn)
        except Exception as exc:
            log.warning("could not unregister session %s: %s", conn.session_id, exc)
            return not self.hub.connections(conn.caller.user_id)

    async def _read_page(self, user_id: int, cursor: int) -> InboxPage:
        return await self._inbox.read(user_id, cursor, self.config.page_size)

    async def _receive_loop(self, conn: Connection) -> bool:
        """Read frames until the socket closes; True when it was dropped for silence."""
        timeout_s = 3 * self.config.heartbeat_interval_ms / 1000
        while not conn.closing:
            try:
                # A timeout scope, not wait_for: that wraps each receive in a task of its own
                # (a kilobyte and a scheduling round per frame, on every idle socket).
                async with asyncio.timeout(timeout_s):
                    message = await conn.ws.receive()
            except TimeoutError:
                conn.close(CLOSE_HEARTBEAT, "no frame for 3 heartbeat intervals")
                return True
            except (WebSocketDisconnect, RuntimeError):
                return False
            if message["type"] == "websocket.disconnect":
                return False
            await self._on_message(conn, message.get("text"))
        return False

    async def _on_message(self, conn: Connection, text: str | None) -> None:
        try:
            frame = frames.parse_frame(text)
        except frames.FrameError as exc:
            metrics.received("unknown" if exc.code == "unknown_op" else None)
            conn.send(frames.error(exc.code, exc.message, exc.ref))
            return
        metrics.received(frame.op)
        try:
            await self.handlers.handle(conn, frame)
        except frames.FrameError as exc:
            conn.send(frames.error(exc.code, exc.message, exc.ref))
        except DomainError as exc:
            conn.send(frames.error_for(exc, frame.ref))
            if isinstance(exc, Unauthorized):
                conn.close(CLOSE_UNAUTHORIZED, exc.code)
        except Exception:  # a bug must cost this frame, not the connection or the process
            log.exception("frame handler failed")
            conn.send(frames.error("internal", "the server failed to handle this frame",
                                   frame.ref))

    async def _refuse(self, ws: WebSocket, exc: DomainError) -> None:
        """An HTTP error before the handshake for apps and tools; a browser (which would see
        only a 1006 close) gets an accepted socket, an ``error`` frame saying why and a close
        code it can act on (``refusal_close_code``)."""
        metrics.UPGRADES_REFUSED.labels(exc.code).inc()
        body = {"error": {"code": exc.code, "message": exc.message}}
        browser = is_browser(ws.headers)
        if not browser and "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(
                JSONResponse(body, status_code=exc.status, headers=exc.http_headers))
            return
        offered = ws.scope.get("subprotocols", ())
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await ws.send_json(frames.error_for(exc))
        await ws.close(refusal_close_code(exc.status),
                       exc.code)

    async def _touch(self, caller: Caller) -> None:
        try:
            await self._accounts.touch(caller.device_id, self._clock.now_ms())
        except DomainError:
            log.warning("could not record last_seen of device %s", caller.device_id)


def _expire(conn: Connection) -> None:
    conn.send(frames.error("token_expired", "the token has expired; log in and reconnect"))
    conn.close(CLOSE_UNAUTHORIZED, "token expired")
