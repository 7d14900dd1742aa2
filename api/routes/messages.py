"""Sends, deletes and sync: ``/v1/messages``, ``/v1/sync``, ``/v1/sync/ack``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, ServicesDep
from api.schemas import AckIn, SendIn
from inbox.conversations import parse_id
from inbox.deletes import parse_scope
from inbox.service import SendRequest
from inbox.wire import entry_json, receipt_json
from sync.cursor import DEFAULT_LIMIT
from sync.metrics import ACKS, SYNCS

router = APIRouter(prefix="/v1", tags=["messages"])


@router.post("/messages", status_code=201)
async def send(body: SendIn, caller: CallerDep, services: ServicesDep) -> JSONResponse:
    """Send a message; a replayed ``client_msg_id`` answers 200 with the original receipt."""
    request = SendRequest(body.body, body.client_msg_id, body.to_user, body.to_group)
    await services.send_limit.check(caller, request)  # 429 + Retry-After past the user's rate
    receipt, replayed = await services.messages.send(caller, request)
    return JSONResponse(receipt_json(receipt), status_code=200 if replayed else 201)


@router.delete("/messages/{msg_id}", status_code=204)
async def delete(msg_id: str, caller: CallerDep, services: ServicesDep, scope: str = "me"
                 ) -> Response:
    """Delete for ``me`` (own inbox and history only) or ``everyone`` (the sender, within
    24 h); a repeat changes nothing."""
    await services.deletes.delete(caller, parse_id(msg_id, "msg_id"), parse_scope(scope))
    return Response(status_code=204)


@router.get("/sync")
async def sync(
    caller: CallerDep,
    services: ServicesDep,
    cur_max_msg_id: str = "0",
    limit: Annotated[int, Query()] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Inbox entries after ``cur_max_msg_id``, oldest first."""
    SYNCS.labels("rest").inc()
    page = await services.sync.sync(
        caller.user_id, parse_id(cur_max_msg_id, "cur_max_msg_id"), limit
    )
    return {
        "entries": [entry_json(e) for e in page.entries],
        "cur_max_msg_id": str(page.cur_max_msg_id),
        "has_more": page.has_more,
    }


@router.post("/sync/ack")
async def ack(body: AckIn, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """Record how far this device has applied its inbox (never moves back)."""
    ACKS.labels("rest").inc()
    cursor = await services.sync.ack(caller.device_id, body.cur_max_msg_id)
    return {"cur_max_msg_id": str(cursor)}
