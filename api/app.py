"""The FastAPI application factory: ``create_app(settings)``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from api.docs_ui import install_docs
from api.error_docs import ANY_ROUTE, errors
from api.errors import BodyLimit, install_error_handlers
from api.metrics import HttpMetrics
from api.routes import accounts, attachments, conversations, groups, messages, ops, presence
from api.settings import Settings
from api.shutdown import DrainOnSignals
from api.webapp import install_webapp
from api.wiring import Services, open_services

log = logging.getLogger(__name__)

DESCRIPTION = """A WeChat-style inbox-per-user sync queue messenger.

Every send is written into each participant's inbox; devices sync with `cur_max_msg_id` over
`GET /v1/sync` or the WebSocket at `/v1/ws` (not described here: see `docs/websocket.md` in the
repository, beside `docs/sync.md`, `docs/api.md` and `docs/errors.md`).

- Ids are 64-bit integers, sent as decimal strings and accepted as strings or integers.
- Authenticate with `Authorization: Bearer <access_token>` from `POST /v1/auth/login`.
- Every error is `{"error": {"code", "message"}}`; a `503` may be retried (with the same
  `client_msg_id` for sends).
"""


WS_PATH = "/v1/ws"


class Messenger:
    """The ASGI application: WebSocket upgrades of ``/v1/ws`` go straight to the gateway,
    everything else (REST, docs, lifespan) to the FastAPI app ``api``.

    A socket lives for hours, mostly idle: passed through FastAPI's router and middleware
    stack, it would keep a coroutine frame of every layer alive for all that time (about
    10 KiB per socket), for layers that have nothing to do with WebSockets.
    """

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == WS_PATH:
            await self.api.state.services.gateway.serve(WebSocket(scope, receive, send))
            return
        await self.api(scope, receive, send)


async def drain_node(services: Services) -> None:
    """Drain this node (``api.shutdown`` runs it on SIGTERM/SIGINT): from now on ``/readyz``
    answers 503 and upgrades are refused (503 ``draining``); every socket gets ``goaway``,
    the answers of its sends in flight and a ``1001`` close; REST is still served until the
    drain window has passed, time for a load balancer to stop sending requests here."""
    window_s = services.settings.drain_window_s
    clock = services.clock
    started = clock.monotonic()
    log.info("draining: no new WebSockets, not ready; stopping in %.1f s "
             "(interrupt again to stop now)", window_s)
    count = await services.gateway.drain(window_s)
    log.info("drained %d WebSockets in %.2f s", count, clock.monotonic() - started)
    await clock.sleep(max(0.0, window_s - (clock.monotonic() - started)))


def create_app(settings: Settings | None = None) -> Messenger:
    """Build the app; adapters are opened in its lifespan and closed when it stops."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            services = await open_services(settings, stack)
            app.state.services = services
            signals = DrainOnSignals(lambda: drain_node(services))
            signals.install()
            stack.push_async_callback(signals.uninstall)
            log.info("%s", settings.summary())
            yield
            # Sockets a drain did not reach (a server that never signalled it) go away too.
            await services.gateway.drain(settings.drain_window_s)

    app = FastAPI(title="Inbox Messenger", version="1", description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None,
                  responses=errors(*ANY_ROUTE))
    install_docs(app)  # /docs and /redoc with local assets (no CDN)
    install_webapp(app)  # the browser app at /app/
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes,
                       exempt=frozenset({attachments.UPLOAD_PATH}))
    app.add_middleware(HttpMetrics)  # outermost: counts the body limit's refusals too
    for module in (accounts, attachments, conversations, groups, messages, ops, presence):
        app.include_router(module.router)
    return Messenger(app)
