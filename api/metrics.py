"""Prometheus metrics of the HTTP API, store timing, and the ``/metrics`` exposition.

Metrics that count a package's own events are declared beside that code
(``gateway/metrics.py``, ``inbox/messages/metrics.py``, ``sync/metrics.py``,
``push/metrics.py``). All of them live in ``prometheus_client``'s default registry, which
also carries the process collector (CPU seconds, resident memory, open file descriptors,
start time) and the Python GC and platform collectors.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.hub import Hub
from gateway.metrics import WS_CONNECTIONS
from push.queue import PushQueue

log = logging.getLogger(__name__)

T = TypeVar("T")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)

HTTP_REQUESTS = Counter(
    "messenger_http_requests_total", "HTTP requests answered, by method, route and status.",
    ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "messenger_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route.",
    ["method", "route"], buckets=LATENCY_BUCKETS)
STORE_SECONDS = Histogram(
    "messenger_store_operation_seconds",
    "Time each storage operation took (failed ones included), by backend, store and operation.",
    ["backend", "store", "operation"], buckets=LATENCY_BUCKETS)
STORE_ERRORS = Counter(
    "messenger_store_operation_errors_total",
    "Storage operations that raised, by backend, store and operation.",
    ["backend", "store", "operation"])
PUSH_QUEUE_DEPTH = Gauge(
    "messenger_push_queue_depth", "Push jobs waiting, scheduled for a retry, or being sent.")
PUSH_QUEUE_OLDEST = Gauge(
    "messenger_push_queue_oldest_job_age_seconds",
    "How long the oldest push job that is due has waited (0 when none is).")
PUSH_DEAD_LETTERS = Gauge(
    "messenger_push_dead_letters", "Push jobs given up and kept in the dead-letter queue.")

UNMATCHED_ROUTE = "unmatched"
"""The ``route`` label of requests no route matched (404s): paths are not labels, since
anyone can invent unbounded numbers of them."""


class HttpMetrics:
    """ASGI middleware counting every HTTP response by route template and timing it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raised before responding

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)


class _Timed:
    """A port implementation whose coroutine methods are timed into ``STORE_SECONDS``."""

    def __init__(self, target: object, backend: str, store: str) -> None:
        self._target = target
        self._backend = backend
        self._store = store

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not inspect.iscoroutinefunction(value):
            return value
        timed = _time_calls(value, STORE_SECONDS.labels(self._backend, self._store, name),
                            STORE_ERRORS.labels(self._backend, self._store, name))
        setattr(self, name, timed)  # looked up once per method, then found directly
        return timed


def _time_calls(method: Callable[..., Awaitable[Any]], seconds: Any, errors: Any
                ) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except BaseException:
            errors.inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - started)

    return timed


def timed(port: T, backend: str, store: str) -> T:
    """``port`` with every coroutine method timed, labelled ``backend`` and ``store``."""
    return cast(T, _Timed(port, backend, store))


async def render(hub: Hub, queue: PushQueue) -> bytes:
    """The text exposition of every metric, with the gauges read now set first."""
    WS_CONNECTIONS.set(hub.count())
    try:
        stats = await queue.stats()
    except Exception as exc:  # a down queue must not take the metrics page with it
        log.warning("metrics: push queue stats unavailable: %s", exc)
    else:
        PUSH_QUEUE_DEPTH.set(stats.depth)
        PUSH_QUEUE_OLDEST.set(stats.oldest_due_age_ms / 1000)
        PUSH_DEAD_LETTERS.set(stats.dead_letters)
    return generate_latest(REGISTRY)
