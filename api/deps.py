"""Typed FastAPI dependencies: the services of this app and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.wiring import Services
from inbox.accounts.throttle import client_key
from inbox.core.models import Caller

_bearer = HTTPBearer(auto_error=False, description="the access_token from /v1/auth/login")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_caller(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The device a bearer token acts as (401 when missing, invalid, expired or logged out)."""
    token = credentials.credentials if credentials is not None else None
    return await services.auth.authenticate(token)


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_client(request: Request) -> str:
    """The client's address as the per-client limits count it (behind a trusted proxy, the
    address the proxy forwarded: uvicorn's proxy headers, ``MESSENGER_FORWARDED_ALLOW_IPS``)."""
    return client_key(request.client)


ClientDep = Annotated[str, Depends(get_client)]
