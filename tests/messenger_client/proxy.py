"""A TCP proxy on loopback whose network we can break: the client's side of a dropped link.

- ``cut()``: every open connection is reset and new ones are dropped at once (unplugged).
- ``blackhole()``: connections stay open but no byte passes either way, new ones too (a
  half-open link: only heartbeats can tell).
- ``restore()``: back to normal for new connections.
- ``upstream_delay_s``: client-to-server bytes wait this long (a slow uplink).
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import Enum


class Mode(Enum):
    UP = "up"
    CUT = "cut"
    BLACKHOLE = "blackhole"


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_port = target_port
        self.host = host
        self.mode = Mode.UP
        self.upstream_delay_s = 0.0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)

    async def stop(self) -> None:
        self._reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def cut(self) -> None:
        self.mode = Mode.CUT
        self._reset_all()

    def blackhole(self) -> None:
        self.mode = Mode.BLACKHOLE

    def restore(self) -> None:
        self.mode = Mode.UP

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode is Mode.CUT:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        pipes = [asyncio.create_task(self._pipe(reader, up_writer, upstream=True)),
                 asyncio.create_task(self._pipe(up_reader, writer, upstream=False))]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    upstream: bool) -> None:
        while data := await reader.read(65536):
            if self.mode is not Mode.UP:
                continue  # blackholed: swallowed
            if upstream and self.upstream_delay_s:
                await asyncio.sleep(self.upstream_delay_s)
            writer.write(data)
            await writer.drain()
