"""One WebSocket to the gateway (I/O): open it and read ``hello``, send frames, read frames
until it ends, ping on the server's heartbeat, and tell how it ended (``Closed``).

What the frames mean is the session's business (``session.py``); this module only moves them
and watches the socket's health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from messenger_client import frames
from messenger_client.errors import ApiError, MessengerError, ProtocolError, error_from_response
from messenger_client.heartbeat import Heartbeat
from messenger_client.reconnect import Closed

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4 * 1024 * 1024  # a page of 200 entries of 16 KiB bodies, JSON-escaped


class Link:
    """An open socket that said ``hello`` (make one with ``Link.open``)."""

    def __init__(self, ws: ClientConnection, hello: frames.Hello,
                 clock: Callable[[], float]) -> None:
        self._ws = ws
        self.hello = hello
        self.heartbeat = Heartbeat.from_hello(hello.heartbeat_interval_ms)
        self._clock = clock
        self._opened_at = clock()
        self._goaway_ms: int | None = None
        self._error: ApiError | None = None
        self._dead = False

    @classmethod
    async def open(cls, url: str, token: str, *, timeout_s: float,
                   clock: Callable[[], float]) -> Link | Closed:
        """Connect and wait for ``hello``; how it failed otherwise."""
        try:
            ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                               ping_interval=None, open_timeout=timeout_s,
                               close_timeout=min(timeout_s, 2.0), max_size=MAX_FRAME_BYTES)
        except InvalidStatus as exc:
            response = exc.response
            body = bytes(response.body or b"")
            return Closed(refused=error_from_response(response.status_code, body,
                                                      response.headers))
        except InvalidURI as exc:
            raise MessengerError(f"not a usable server URL: {exc}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            return Closed(reason=f"cannot connect: {exc!r}")
        try:
            async with asyncio.timeout(timeout_s):
                first = frames.decode(await ws.recv())
        except ConnectionClosed as exc:
            return _closed(exc)
        except (TimeoutError, ProtocolError) as exc:
            await ws.close()
            return Closed(reason=f"no hello: {exc!r}")
        if isinstance(first, frames.ErrorFrame):  # refused after the upgrade: a close follows
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await ws.recv()
            return Closed(ws.close_code, ws.close_reason or "", error=first.error)
        if not isinstance(first, frames.Hello):
            await ws.close()
            return Closed(reason=f"first frame was not hello: {first!r}")
        return cls(ws, first, clock)

    async def send(self, text: str) -> bool:
        """Send one frame; False once the socket is closed (the reader sees why)."""
        try:
            await self._ws.send(text)
        except ConnectionClosed:
            return False
        return True

    async def frames(self) -> AsyncIterator[frames.ServerFrame]:
        """Frames until the socket ends, or until the server is silent for too long (a dead
        network: the socket is then aborted). Frames this client cannot read are skipped."""
        while True:
            try:
                async with asyncio.timeout(self.heartbeat.dead_after_s):
                    text = await self._ws.recv()
            except TimeoutError:
                self._dead = True
                log.info("no frame for %.1f s: the connection is dead",
                         self.heartbeat.dead_after_s)
                self._ws.transport.abort()
                return
            except ConnectionClosed:
                return
            try:
                frame = frames.decode(text)
            except ProtocolError as exc:
                log.warning("skipping a frame: %s", exc)
                continue
            if isinstance(frame, frames.GoAway):
                self._goaway_ms = frame.reconnect_after_ms
            elif isinstance(frame, frames.ErrorFrame) and frame.ref is None:
                self._error = frame.error
            yield frame

    async def keep_alive(self) -> None:
        """Ping once per heartbeat interval until the socket closes."""
        while True:
            if not await self.send(frames.ping()):
                return
            await asyncio.sleep(self.heartbeat.ping_every_s)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()

    def closed(self) -> Closed:
        """How this socket ended (call once ``frames`` has finished)."""
        code = None if self._dead else self._ws.close_code
        reason = "server silent for 3 heartbeat intervals" if self._dead else (
            self._ws.close_reason or "")
        return Closed(code if code != 1006 else None, reason, error=self._error,
                      goaway_ms=self._goaway_ms, uptime_s=self._clock() - self._opened_at)


def _closed(exc: ConnectionClosed) -> Closed:
    return Closed(exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else Closed(reason=str(exc))
