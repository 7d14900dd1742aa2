"""Typed FastAPI dependencies: each route asks for the services it uses, and the caller.

The services are built once, in the app's lifespan (``api.wiring``), and kept on
``app.state``; these functions hand each route only its own. Every one is ``async def``:
FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per dependency per
request (it cost a REST send about 40% of its throughput).
"""

from __future__ import annotations

from typing import Annotated

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


async def get_auth(services: ServicesDep) -> AccountService:
    return services.auth


async def get_messages(services: ServicesDep) -> MessageService:
    return services.messages


async def get_deletes(services: ServicesDep) -> DeleteService:
    return services.deletes


async def get_sync(services: ServicesDep) -> SyncService:
    return services.sync


async def get_groups(services: ServicesDep) -> GroupService:
    return services.groups


async def get_views(services: ServicesDep) -> ConversationViews:
    return services.conversation_views


async def get_reads(services: ServicesDep) -> ReadService:
    return services.reads


async def get_mutes(services: ServicesDep) -> MuteService:
    return services.mutes


async def get_presence(services: ServicesDep) -> PresenceService:
    return services.presence


async def get_attachments(services: ServicesDep) -> AttachmentService:
    return services.attachments


AttachmentsDep = Annotated[AttachmentService, Depends(get_attachments)]
AuthDep = Annotated[AccountService, Depends(get_auth)]
MessagesDep = Annotated[MessageService, Depends(get_messages)]
DeletesDep = Annotated[DeleteService, Depends(get_deletes)]
SyncDep = Annotated[SyncService, Depends(get_sync)]
GroupsDep = Annotated[GroupService, Depends(get_groups)]
ViewsDep = Annotated[ConversationViews, Depends(get_views)]
ReadsDep = Annotated[ReadService, Depends(get_reads)]
MutesDep = Annotated[MuteService, Depends(get_mutes)]
PresenceDep = Annotated[PresenceService, Depends(get_presence)]


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
