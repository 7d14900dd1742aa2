"""WebSocket frames: parse client frames into typed requests, build server frames. No I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from inbox.core.errors import DomainError
from inbox.core.ids import parse_id

CLIENT_OPS = frozenset({"sync", "send", "ack", "typing", "read", "ping"})


class FrameError(DomainError):
    """A frame the server cannot act on; answered with an ``error`` frame, never a close."""

    status = 400

    def __init__(self, message: str, *, code: str, ref: str | None = None) -> None:
        super().__init__(message, code=code)
        self.ref = ref


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A decoded client frame: its op, its fields and the ``ref`` to echo."""

    op: str
    data: dict[str, Any]
    ref: str | None


def parse_frame(text: str | None) -> ClientFrame:
    """Decode one client frame; FrameError with the API's code when it is not a valid frame."""
    if text is None:
        raise FrameError("frames must be JSON text, not binary", code="invalid_frame")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also integers over 4300 digits
        raise FrameError("frame is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise FrameError("frame must be a JSON object", code="invalid_frame")
    try:  # "\ud800" escapes decode to lone surrogates, which no store or socket can encode
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        raise FrameError("frame holds a lone surrogate (not valid Unicode) or nests too deeply",
                         code="invalid_frame") from None
    ref = data.get("ref")
    ref = ref if isinstance(ref, str) else None
    op = data.get("op")
    if not isinstance(op, str):
        raise FrameError("frame needs a string 'op'", code="invalid_frame", ref=ref)
    if op not in CLIENT_OPS:
        raise FrameError(f"unknown op {op!r}", code="unknown_op", ref=ref)
    return ClientFrame(op, data, ref)


def require_str(frame: ClientFrame, name: str) -> str:
    """A required string field of the frame."""
    value = frame.data.get(name)
    if not isinstance(value, str):
        raise FrameError(f"'{name}' must be a string", code="invalid_frame", ref=frame.ref)
    return value


def require_id(frame: ClientFrame, name: str) -> int:
    """A required id field (string or integer) of the frame."""
    value = frame.data.get(name)
    if not isinstance(value, str | int):
        raise FrameError(f"'{name}' must be an id", code="invalid_frame", ref=frame.ref)
    return parse_id(value, name)


def optional_str(frame: ClientFrame, name: str, default: str) -> str:
    """An optional string field: ``default`` when absent."""
    return default if name not in frame.data else require_str(frame, name)


def optional_ids(frame: ClientFrame, name: str) -> tuple[int, ...]:
    """An optional list of ids (strings or integers): empty when absent or null."""
    values = frame.data.get(name)
    if values is None:
        return ()
    if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
        raise FrameError(f"'{name}' must be a list of ids", code="invalid_frame",
                         ref=frame.ref)
    return tuple(parse_id(v, name) for v in values)


def optional_id(frame: ClientFrame, name: str) -> int | None:
    """An optional id field: None when absent or null."""
    return None if frame.data.get(name) is None else require_id(frame, name)


def hello(session_id: str, heartbeat_interval_ms: int) -> dict[str, Any]:
    return {"op": "hello", "session_id": session_id, "heartbeat_interval_ms": heartbeat_interval_ms}


def entries(items: list[dict[str, Any]], cur_max_msg_id: int) -> dict[str, Any]:
    return {"op": "entries", "entries": items, "cur_max_msg_id": str(cur_max_msg_id)}


def sync_started(cursor: int) -> dict[str, Any]:
    """The answer to ``sync``, queued as the delivery cursor moves back: ``entries`` frames
    before it were streamed live before the sync (a client dropping them loses nothing: the
    replay brings them again); frames after it follow the client's cursor."""
    return {"op": "sync_started", "cur_max_msg_id": str(cursor)}


def goaway(reconnect_after_ms: int) -> dict[str, Any]:
    """The node is draining: reconnect (to any node) after ``reconnect_after_ms`` and sync."""
    return {"op": "goaway", "reconnect_after_ms": reconnect_after_ms}


def error(code: str, message: str, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"op": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    return frame


def error_for(exc: DomainError, ref: str | None = None) -> dict[str, Any]:
    """The ``error`` frame of a refusal; one that knows when to try again (a rate limit, a
    send whose key another attempt holds) says so (``retry_after_ms``)."""
    frame = error(exc.code, exc.message, ref)
    if exc.retry_after_s is not None:
        frame["retry_after_ms"] = exc.retry_after_ms
    return frame


def with_ref(frame: dict[str, Any], ref: str | None) -> dict[str, Any]:
    """Echo the client's ``ref`` on a reply."""
    return {**frame, "ref": ref} if ref is not None else frame


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


