"""Conversations: the list, history, read markers (``/read``) and mutes (``/mute``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CallerDep, MutesDep, ReadsDep, ViewsDep
from api.error_docs import AUTHED, WITH_BODY, errors
from api.responses import ConversationOut, MessageOut
from api.schemas import MuteIn, ReadIn
from gateway.wire import conversation_json, message_json
from inbox.conversations.views import HISTORY_DEFAULT_LIMIT
from inbox.core.ids import parse_id

router = APIRouter(prefix="/v1", tags=["conversations"])

CONVERSATION_ERRORS = errors(*AUTHED, 403, 404, 422)
"""A conversation id in the path: malformed 422, reversed or unknown 404, outsider 403."""


@router.get("/conversations", response_model_exclude_unset=True, responses=errors(*AUTHED))
async def list_conversations(caller: CallerDep, views: ViewsDep
                             ) -> list[ConversationOut]:
    """The caller's conversations, newest activity first, with title, last message, unread."""
    summaries = await views.summaries(caller)
    return [ConversationOut.model_validate(conversation_json(s)) for s in summaries]


@router.get("/conversations/{cid}/messages", response_model_exclude_unset=True,
            responses=CONVERSATION_ERRORS)
async def history(
    cid: str,
    caller: CallerDep,
    views: ViewsDep,
    before: str | None = None,
    limit: Annotated[int, Query(description="1..200")] = HISTORY_DEFAULT_LIMIT,
) -> list[MessageOut]:
    """Messages before ``before`` (a msg_id), newest first, deleted ones left out."""
    before_id = parse_id(before, "before") if before is not None else None
    page = await views.history(caller, cid, before_id, limit)
    return [MessageOut.model_validate(message_json(m)) for m in page]


@router.post("/conversations/{cid}/read", status_code=204,
             responses={**CONVERSATION_ERRORS, **errors(*WITH_BODY)})
async def read(cid: str, body: ReadIn, caller: CallerDep, reads: ReadsDep) -> Response:
    """Mark read up to ``up_to_msg_id``; a stale or repeated read changes nothing."""
    await reads.mark_read(caller, cid, body.up_to_msg_id)
    return Response(status_code=204)


@router.post("/conversations/{cid}/mute", status_code=204,
             responses={**CONVERSATION_ERRORS, **errors(*WITH_BODY)})
async def mute(cid: str, body: MuteIn, caller: CallerDep, mutes: MutesDep) -> Response:
    """No pushes for this conversation until ``until`` (null: forever; past: unmute)."""
    await mutes.mute(caller, cid, body.until)
    return Response(status_code=204)
