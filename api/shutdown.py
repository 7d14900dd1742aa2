"""Drain the node when SIGTERM or SIGINT arrives, before uvicorn starts its own shutdown.

uvicorn's ``Server.shutdown`` first closes the listening sockets, then calls every
connection's ``shutdown()`` (which closes each WebSocket with ``1012`` at once), and only then
runs the application's lifespan shutdown: a drain placed there finds no socket left. The drain
has to run between the signal and ``Server.shutdown``, while the node still listens.

The hook is a signal handler installed by the application's lifespan in front of the one
uvicorn installed (``Server.capture_signals``): the first SIGTERM or SIGINT starts the drain
on the event loop, and when it is over the signal is handed to uvicorn's handler, which then
shuts down as usual (listeners, HTTP requests in flight, lifespan, exit). A subclass of
``uvicorn.Server`` overriding ``shutdown`` would do the same for one process, but uvicorn
builds its own ``Server`` in each ``--workers`` process (``supervisors.multiprocess``) with no
way to pass a subclass; the lifespan runs in every process that serves the app.

- A repeated SIGTERM changes nothing (a supervisor and its parent may both send one: systemd
  signals every process of the unit, and uvicorn's parent signals its workers).
- Another SIGINT (Ctrl-C again) is handed over at once: uvicorn stops without waiting for the
  drain (a third forces the exit, as uvicorn does).
- Outside the main thread (a server run in a thread by a test) nothing is installed: Python
  lets only the main thread set signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DrainOnSignals:
    """Runs ``drain`` on the first SIGTERM/SIGINT, then hands the signal to the handler that
    was installed before (uvicorn's)."""

    def __init__(self, drain: Callable[[], Awaitable[None]]) -> None:
        self._drain = drain
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signum: int | None = None  # the signal that started the drain
        self._handed_over = False
        self._task: asyncio.Task[None] | None = None

    def install(self) -> bool:
        """Put the handler in front of the current ones; False outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return True

    async def uninstall(self) -> None:
        """Give the signals back to the previous handlers; stop a drain still running."""
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous)
        self._previous = {}
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signum is None:
            self._signum = signum
            assert self._loop is not None  # noqa: S101 (set by install)
            self._loop.call_soon_threadsafe(self._start)
        elif signum == signal.SIGINT:
            log.info("interrupted again: stopping without waiting for the drain")
            self._hand_over(signum)

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="drain")

    async def _run(self) -> None:
        try:
            await self._drain()
        except Exception:  # a failed drain must not keep the process from stopping
            log.exception("the drain failed")
        if not self._handed_over and self._signum is not None:
            self._hand_over(self._signum)

    def _hand_over(self, signum: int) -> None:
        """Pass ``signum`` on to the handler that was there before ours."""
        self._handed_over = True
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, None)
        else:  # no server handler (default action): let the signal do what it would have
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            signal.raise_signal(signum)
