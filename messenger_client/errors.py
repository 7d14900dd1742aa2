"""Typed errors: every failure the server reports carries its ``code`` and HTTP ``status``.

REST answers an error envelope ``{"error": {"code", "message"}}`` with a status; the WebSocket
answers an ``error`` frame with a ``code`` only, so frames get the status their code has in
REST. Callers catch by class (``NotFound``, ``RateLimited``...) or branch on ``code``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


class MessengerError(Exception):
    """Base of every error raised by the client."""


class ApiError(MessengerError):
    """The server refused a request: ``code`` (snake_case), ``status`` (HTTP), ``message``."""

    status: int = 400

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        if status is not None:
            self.status = status


class InvalidRequest(ApiError):
    """400/422: the request was malformed (a retry of the same request fails again)."""


class CredentialsError(ApiError):
    """401: wrong password, or a token that is invalid, expired or logged out.

    The client stops reconnecting: only a new login (``messenger login``) helps.
    """

    status = 401


class Forbidden(ApiError):
    """403: not a participant, or another user's device."""

    status = 403


class NotFound(ApiError):
    """404: unknown id."""

    status = 404


class Conflict(ApiError):
    """409: ``username_taken``, ``group_full``."""

    status = 409


class TooLarge(ApiError):
    """413: ``message_too_large`` / ``request_too_large``."""

    status = 413


class RateLimited(ApiError):
    """429: wait ``retry_after_s`` seconds; the refused request had no effect."""

    status = 429

    def __init__(self, code: str, message: str, status: int | None = None,
                 retry_after_s: float = 1.0) -> None:
        super().__init__(code, message, status)
        self.retry_after_s = retry_after_s


class Unavailable(ApiError):
    """503 (or another 5xx): the server cannot answer now; the request may be retried, not
    before ``retry_after_s`` when the server said (another attempt of the same send is still
    in flight; a draining or overloaded server refusing a WebSocket upgrade)."""

    status = 503

    def __init__(self, code: str, message: str, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(code, message, status)
        self.retry_after_s = retry_after_s


class ConnectionFailed(MessengerError):
    """The server could not be reached (refused, reset, timed out)."""


class NotLoggedIn(MessengerError):
    """The profile holds no session: log in first."""


class ProtocolError(MessengerError):
    """The server sent something this client cannot read (a frame or body off the contract)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest, 401: CredentialsError, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: TooLarge, 422: InvalidRequest, 429: RateLimited,
}

CODE_STATUS: dict[str, int] = {
    "invalid_json": 400, "invalid_frame": 400, "unknown_op": 400, "bad_request": 400,
    "invalid_request": 422, "unauthorized": 401, "invalid_token": 401, "token_expired": 401,
    "invalid_credentials": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
    "username_taken": 409, "group_full": 409, "message_too_large": 413,
    "request_too_large": 413, "rate_limited": 429, "unavailable": 503, "internal": 500,
}
"""The REST status of each error code, for ``error`` frames (which carry no status)."""


def error_for(status: int, code: str, message: str, retry_after_s: float | None = None
              ) -> ApiError:
    """The typed error for a status and code."""
    if status == 429:
        return RateLimited(code, message, status, retry_after_s or 1.0)
    if status >= 500:
        return Unavailable(code, message, status, retry_after_s)
    return _BY_STATUS.get(status, ApiError)(code, message, status)


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> ApiError:
    """The typed error for an HTTP error response (any body: a proxy's HTML page too)."""
    code, message = f"http_{status}", body.decode("utf-8", "replace")[:200] or f"HTTP {status}"
    try:
        envelope: Any = json.loads(body)
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
        err = envelope["error"]
        code = str(err.get("code", code))
        message = str(err.get("message", message))
    return error_for(status, code, message, _retry_after(headers.get("retry-after")))


def error_from_frame(frame: Mapping[str, Any]) -> ApiError:
    """The typed error for an ``error`` frame (``retry_after_ms`` on ``rate_limited``, and on
    ``unavailable`` when the server knows when to retry)."""
    code = str(frame.get("code", "error"))
    retry_ms = frame.get("retry_after_ms")
    retry_s = retry_ms / 1000 if isinstance(retry_ms, int | float) else None
    return error_for(CODE_STATUS.get(code, 400), code, str(frame.get("message", "")), retry_s)


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (only the delta form; the server never sends dates)."""
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
