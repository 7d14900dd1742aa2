"""Per-conversation settings: ``/v1/conversations/{cid}/mute``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import CallerDep, ServicesDep
from api.schemas import MuteIn
from inbox.participants import require_participant

router = APIRouter(prefix="/v1", tags=["conversations"])


@router.post("/conversations/{cid}/mute", status_code=204)
async def mute(cid: str, body: MuteIn, caller: CallerDep, services: ServicesDep) -> Response:
    """No pushes for this conversation until ``until`` (null: forever; past: unmute)."""
    ref = await require_participant(caller, cid)
    until_ms = int(body.until.timestamp() * 1000) if body.until is not None else None
    await services.mutes.set_mute(caller.user_id, ref.id, until_ms)
    return Response(status_code=204)
