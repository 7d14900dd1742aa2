"""Presence: ``GET /v1/presence?user_ids=1,2,3``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CallerDep, PresenceDep
from api.error_docs import AUTHED, errors
from api.responses import PresenceMapOut
from gateway.wire import rfc3339_or_none
from inbox.core.errors import InvalidInput
from inbox.core.ids import parse_id

router = APIRouter(prefix="/v1", tags=["presence"])

MAX_PRESENCE_IDS = 200


def parse_user_ids(raw: str) -> list[int]:
    """Comma-separated ids, duplicates dropped; 422 when empty, malformed or more than 200."""
    if not raw.strip():
        raise InvalidInput("user_ids must list at least one id")
    ids = list(dict.fromkeys(parse_id(part.strip(), "user_ids") for part in raw.split(",")))
    if len(ids) > MAX_PRESENCE_IDS:
        raise InvalidInput(f"at most {MAX_PRESENCE_IDS} user_ids per request, got {len(ids)}")
    return ids


@router.get("/presence", responses=errors(*AUTHED, 422))
async def presence(
    user_ids: Annotated[str, Query(description="comma-separated user ids, at most 200")],
    _: CallerDep,
    presence: PresenceDep,
) -> PresenceMapOut:
    """Each user's ``{status, last_seen}``: online while any of its devices holds a live
    connection (``last_seen`` is then now); an unknown id reads as offline, never seen."""
    infos = await presence.statuses(parse_user_ids(user_ids))
    return PresenceMapOut.model_validate(
        {str(uid): {"status": info.status.value, "last_seen": rfc3339_or_none(info.last_seen_ms)}
         for uid, info in infos.items()})
