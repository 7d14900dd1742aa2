"""Groups: ``/v1/groups`` and their members (thin: parse, call ``GroupService``, serialise)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, ServicesDep
from api.schemas import GroupIn, GroupMembersIn
from inbox.conversations import parse_id
from inbox.wire import group_json

router = APIRouter(prefix="/v1", tags=["groups"])


@router.post("/groups", status_code=201)
async def create_group(body: GroupIn, caller: CallerDep, services: ServicesDep
                       ) -> JSONResponse:
    """Create a group owned by the caller (a member too); at most 100 members. A repeated
    ``client_group_id`` answers 200 with the group the first request created."""
    group, replayed = await services.groups.create_once(caller, body.name, body.member_ids,
                                                        body.client_group_id)
    return JSONResponse(group_json(group), status_code=200 if replayed else 201)


@router.get("/groups/{group_id}")
async def get_group(group_id: str, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """The group, for its members only."""
    group = await services.groups.get(caller, parse_id(group_id, "group_id"))
    return group_json(group)


@router.post("/groups/{group_id}/members")
async def add_members(group_id: str, body: GroupMembersIn, caller: CallerDep,
                      services: ServicesDep) -> dict[str, Any]:
    """Any member adds users; ids already in are ignored; past 100 -> 409 ``group_full``."""
    group = await services.groups.add_members(caller, parse_id(group_id, "group_id"),
                                              body.user_ids)
    return group_json(group)


@router.delete("/groups/{group_id}/members/{user_id}", status_code=204)
async def remove_member(group_id: str, user_id: str, caller: CallerDep, services: ServicesDep
                        ) -> Response:
    """The owner removes anyone, a member removes itself (leaves)."""
    await services.groups.remove_member(caller, parse_id(group_id, "group_id"),
                                        parse_id(user_id, "user_id"))
    return Response(status_code=204)
