"""Groups: ``/v1/groups`` and their members (thin: parse, call ``GroupService``, serialise)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import CallerDep, GroupsDep
from api.error_docs import AUTHED, WITH_BODY, errors
from api.responses import GroupOut
from api.schemas import GroupIn, GroupMembersIn
from gateway.wire import group_json
from inbox.core.ids import parse_id

router = APIRouter(prefix="/v1", tags=["groups"])

REPLAYED = {"model": GroupOut, "description": "a repeated `client_group_id`: the group the "
                                              "first request created"}


@router.post("/groups", status_code=201,
             responses={200: REPLAYED, **errors(*AUTHED, *WITH_BODY, 403, 404, 409)})
async def create_group(body: GroupIn, caller: CallerDep, groups: GroupsDep,
                       response: Response) -> GroupOut:
    """Create a group owned by the caller (a member too); at most 100 members. A repeated
    ``client_group_id`` answers 200 with the group the first request created."""
    group, replayed = await groups.create_once(caller, body.name, body.member_ids,
                                                        body.client_group_id)
    if replayed:
        response.status_code = 200
    return GroupOut.model_validate(group_json(group))


@router.get("/groups/{group_id}", responses=errors(*AUTHED, 403, 404, 422))
async def get_group(group_id: str, caller: CallerDep, groups: GroupsDep) -> GroupOut:
    """The group, for its members only."""
    group = await groups.get(caller, parse_id(group_id, "group_id"))
    return GroupOut.model_validate(group_json(group))


@router.post("/groups/{group_id}/members",
             responses=errors(*AUTHED, *WITH_BODY, 403, 404, 409))
async def add_members(group_id: str, body: GroupMembersIn, caller: CallerDep,
                      groups: GroupsDep) -> GroupOut:
    """Any member adds users; ids already in are ignored; past 100 -> 409 ``group_full``."""
    group = await groups.add_members(caller, parse_id(group_id, "group_id"),
                                              body.user_ids)
    return GroupOut.model_validate(group_json(group))


@router.delete("/groups/{group_id}/members/{user_id}", status_code=204,
               responses=errors(*AUTHED, 403, 404, 422))
async def remove_member(group_id: str, user_id: str, caller: CallerDep, groups: GroupsDep
                        ) -> Response:
    """The owner removes anyone, a member removes itself (leaves)."""
    await groups.remove_member(caller, parse_id(group_id, "group_id"),
                                        parse_id(user_id, "user_id"))
    return Response(status_code=204)
