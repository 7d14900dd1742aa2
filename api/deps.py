"""Typed FastAPI dependencies: each route asks for the services it uses, and the caller.

The services are built once, in the app's lifespan (``api.wiring``), and kept on
``app.state``; these functions hand each route only its own. Every one is ``async def``:
FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per dependency per
request (it cost a REST send about 40% of its throughput).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.wiring import Services
from gateway.presence_service import PresenceService
from inbox.accounts.service import AccountService
from inbox.accounts.throttle import client_key
from inbox.attachments.service import AttachmentService
from inbox.conversations.mutes import MuteService
from inbox.conversations.reads import ReadService
from inbox.conversations.views import ConversationViews
from inbox.core.models import Caller
from inbox.groups.service import GroupService
from inbox.messages.deletes import DeleteService
from inbox.messages.service import MessageService
from sync.service import SyncService

_bearer = HTTPBearer(auto_error=False, description="the access_token from /v1/auth/login")


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _service(pick: Callable[[Services], Any]) -> Any:
    """``Depends`` on the one service ``pick`` takes from the app's services."""
    async def dependency(services: ServicesDep) -> Any:
        return pick(services)

    return Depends(dependency)


AttachmentsDep = Annotated[AttachmentService, _service(lambda s: s.attachments)]
AuthDep = Annotated[AccountService, _service(lambda s: s.auth)]
MessagesDep = Annotated[MessageService, _service(lambda s: s.messages)]
DeletesDep = Annotated[DeleteService, _service(lambda s: s.deletes)]
SyncDep = Annotated[SyncService, _service(lambda s: s.sync)]
GroupsDep = Annotated[GroupService, _service(lambda s: s.groups)]
ViewsDep = Annotated[ConversationViews, _service(lambda s: s.conversation_views)]
ReadsDep = Annotated[ReadService, _service(lambda s: s.reads)]
MutesDep = Annotated[MuteService, _service(lambda s: s.mutes)]
PresenceDep = Annotated[PresenceService, _service(lambda s: s.presence)]


async def get_caller(
    auth: AuthDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The device a bearer token acts as (401 when missing, invalid, expired or logged out)."""
    token = credentials.credentials if credentials is not None else None
    return await auth.authenticate(token)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_client(request: Request) -> str:
    """The client's address as the per-client limits count it (behind a trusted proxy, the
    address the proxy forwarded: uvicorn's proxy headers, ``MESSENGER_FORWARDED_ALLOW_IPS``)."""
    return client_key(request.client)


ClientDep = Annotated[str, Depends(get_client)]
