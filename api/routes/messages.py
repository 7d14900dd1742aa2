"""Sends, deletes and sync: ``/v1/messages``, ``/v1/sync``, ``/v1/sync/ack``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CallerDep, DeletesDep, MessagesDep, SyncDep
from api.error_docs import AUTHED, WITH_BODY, errors
from api.responses import AckOut, ReceiptOut, SyncOut
from api.schemas import AckIn, SendIn
from gateway.wire import entry_json, receipt_json
from inbox.core.ids import parse_id
from inbox.messages.deletes import parse_scope
from inbox.messages.service import SendRequest
from sync.cursor import DEFAULT_LIMIT
from sync.metrics import ACKS, SYNCS

router = APIRouter(prefix="/v1", tags=["messages"])

REPLAYED = {"model": ReceiptOut, "description": "a replayed `client_msg_id`: the original "
                                                "receipt; nothing was stored again"}


@router.post("/messages", status_code=201,
             responses={200: REPLAYED, **errors(*AUTHED, *WITH_BODY, 403, 404, 429)})
async def send(body: SendIn, caller: CallerDep, messages: MessagesDep, response: Response
               ) -> ReceiptOut:
    """Send a message; a replayed ``client_msg_id`` answers 200 with the original receipt."""
    request = SendRequest(body.body, body.client_msg_id, body.to_user, body.to_group,
                          tuple(body.attachments))
    receipt, replayed = await messages.send(caller, request)
    if replayed:
        response.status_code = 200
    return ReceiptOut.model_validate(receipt_json(receipt))


@router.delete("/messages/{msg_id}", status_code=204, responses=errors(*AUTHED, 403, 404, 422))
async def delete(msg_id: str, caller: CallerDep, deletes: DeletesDep,
                 scope: Annotated[str, Query(description="'me' or 'everyone'")] = "me"
                 ) -> Response:
    """Delete for ``me`` (own inbox and history only) or ``everyone`` (the sender, within
    24 h); a repeat changes nothing."""
    await deletes.delete(caller, parse_id(msg_id, "msg_id"), parse_scope(scope))
    return Response(status_code=204)


@router.get("/sync", response_model_exclude_unset=True, responses=errors(*AUTHED, 422))
async def sync(
    caller: CallerDep,
    sync_service: SyncDep,
    cur_max_msg_id: Annotated[str, Query(description="the largest entry id applied; 0 "
                                                     "for the whole inbox")] = "0",
    limit: Annotated[int, Query(description="1..1000")] = DEFAULT_LIMIT,
) -> SyncOut:
    """Inbox entries after ``cur_max_msg_id``, oldest first."""
    SYNCS.labels("rest").inc()
    page = await sync_service.sync(
        caller.user_id, parse_id(cur_max_msg_id, "cur_max_msg_id"), limit
    )
    return SyncOut.model_validate({
        "entries": [entry_json(e) for e in page.entries],
        "cur_max_msg_id": str(page.cur_max_msg_id),
        "has_more": page.has_more,
    })


@router.post("/sync/ack", responses=errors(*AUTHED, *WITH_BODY))
async def ack(body: AckIn, caller: CallerDep, sync_service: SyncDep) -> AckOut:
    """Record how far this device has applied its inbox (never moves back). Messages it got
    live over a WebSocket and that this covers are not pushed to it (docs/push.md)."""
    ACKS.labels("rest").inc()
    cursor = await sync_service.ack(caller.device_id, body.cur_max_msg_id)
    return AckOut(cur_max_msg_id=str(cursor))
