"""Stopping background tasks without losing the caller's own cancellation.

``task.cancel(); with suppress(CancelledError): await task`` looks right but also swallows a
cancellation of the *caller* that arrives while it waits: the caller then carries on as if
nothing happened (a client that should stop reconnects instead). ``stop_tasks`` waits with
``gather``, which lets the caller's cancellation through.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def stop_tasks(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks still running and wait until all have ended. A task that had failed
    is a bug somewhere: its error is logged here rather than lost."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    for task in running:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())
