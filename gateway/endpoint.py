"""The ``/v1/ws`` endpoint: auth at upgrade, hello, the receive loop with heartbeats.

An upgrade is refused with an HTTP answer and the error envelope: 429 ``rate_limited`` with
``Retry-After`` past the client address's upgrade limit, 400 for a malformed subprotocol offer,
401 for a missing, invalid or logged-out token (how a token is presented: ``gateway.handshake``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import frames, metrics
from gateway.connection import CLOSE_HEARTBEAT, CLOSE_TRY_AGAIN, CLOSE_UNAUTHORIZED, Connection
from gateway.handlers import FrameHandlers
from gateway.handshake import read_upgrade
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
        unacked: UnackedWatch | None = None,
    ) -> None:
        """``unacked`` watches live deliveries until acked (None: they are final)."""
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
        self.unacked = unacked

    async def serve(self, ws: WebSocket) -> None:
        try:
            await self._throttle.upgrade(client_key(ws.client))
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
                message = await asyncio.wait_for(conn.ws.receive(), timeout_s)
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
        body = {"error": {"code": exc.code, "message": exc.message}}
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(
                JSONResponse(body, status_code=exc.status, headers=exc.http_headers))
            return
        await ws.accept()
        await ws.send_json(frames.error(exc.code, exc.message))
        await ws.close(CLOSE_UNAUTHORIZED, exc.code)

    async def _touch(self, caller: Caller) -> None:
        try:
            await self._accounts.touch(caller.device_id, self._clock.now_ms())
        except DomainError:
            log.warning("could not record last_seen of device %s", caller.device_id)


def _expire(conn: Connection) -> None:
    conn.send(frames.error("token_expired", "the token has expired; log in and reconnect"))
    conn.close(CLOSE_UNAUTHORIZED, "token expired")
