"""A TCP proxy on a free loopback port that a test can cut, as a network failure would.

``cut()`` resets every open connection through it (the browser sees its WebSocket drop with
1006, like a lost network); new connections go through again at once, except those whose
first request is for a path under one of ``refused`` (then reset before reaching the server).
"""

from __future__ import annotations

import asyncio
import threading

from tests.servers.redis_server import free_ports

CHUNK = 65536


class CutProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_ports(1)[0]
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self.refused: tuple[str, ...] = ()
        """Path prefixes whose new connections are reset (``("/v1/ws",)``: no WebSocket)."""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CutProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut(self) -> None:
        """Reset every connection open through the proxy now."""
        done = threading.Event()

        def abort_all() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
            done.set()

        self._loop.call_soon_threadsafe(abort_all)
        done.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for writer in self._writers:
                writer.transport.abort()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(CHUNK)
        request_line = first.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        path = request_line[1] if len(request_line) > 1 else ""
        if not first or path.startswith(self.refused or ("\0",)):
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        up_writer.write(first)
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until EOF (then pass the EOF on) or a reset (then reset)."""
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except OSError:
            writer.transport.abort()
            return
        writer.close()
