"""The error answers each route declares in OpenAPI: the envelope under every 4xx/5xx status.

``errors(*statuses)`` builds a route's ``responses=`` mapping; the route-kind tuples below
name the statuses that whole kinds of route can answer (``api.errors`` produces them).
"""

from __future__ import annotations

from typing import Any

from api.responses import ErrorOut

DESCRIPTIONS: dict[int, str] = {
    400: "`invalid_json`: the body is not JSON the server can decode (malformed, not UTF-8, "
         "nested too deep); uploads: `length_mismatch` (the body is not as long as declared)",
    401: "`unauthorized` (no bearer token), `invalid_token` (bad signature, or the device was "
         "logged out), `token_expired`; on login `invalid_credentials`",
    403: "`forbidden`: not a participant or member, another user's device, or not allowed to "
         "the caller (see the route)",
    404: "`not_found`: an unknown (or, for messages, not visible) id",
    409: "`username_taken` or `group_full` (a group holds at most 100 members)",
    413: "`request_too_large` (the body is over the request limit), `message_too_large` "
         "(a message body over 16 KiB of UTF-8) or `attachment_too_large` (an upload over "
         "the attachment limit)",
    416: "`range_not_satisfiable`: the range starts past the end (`Content-Range: bytes "
         "*/<size>`)",
    422: "`invalid_request`: a field, path or query value is missing, mistyped or out of "
         "range; uploads also `empty_attachment`, `invalid_image` (does not decode, e.g. "
         "truncated), `image_too_large` (too many pixels: a decompression bomb), "
         "`upload_incomplete`",
    429: "`rate_limited`: over the per-user send limit; retry after `Retry-After` seconds",
    500: "`internal`: a bug in the server; the request may be retried",
    501: "`not_supported`: presigned uploads need S3 storage (upload with POST "
         "/v1/attachments)",
    503: "`unavailable`: a backing store cannot answer now, or another attempt of the same "
         "idempotency key is still in flight; retry (with the same idempotency key, where the "
         "route takes one; after `Retry-After` seconds when given)",
}

RETRY_AFTER = {"Retry-After": {"description": "whole seconds to wait (at least 1)",
                               "schema": {"type": "integer", "minimum": 1}}}
RETRY_AFTER_WHEN_KNOWN = {"Retry-After": {
    "description": "whole seconds to wait (at least 1), when the server knows (another "
                   "attempt of the same idempotency key is in flight)",
    "schema": {"type": "integer", "minimum": 1}}}

AUTHED = (401, 503)
"""Every route that takes a bearer token and reads a store."""
WITH_BODY = (400, 413, 422)
"""Every route that reads a JSON body."""
ANY_ROUTE = (500,)
"""What any route may answer (given to the app, so every operation documents it)."""


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries of these error statuses, each with the error envelope."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {"model": ErrorOut, "description": DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = RETRY_AFTER
        elif status == 503:
            entry["headers"] = RETRY_AFTER_WHEN_KNOWN
        out[status] = entry
    return out


def json_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``errors`` for a route whose success is not JSON (its media type would otherwise be
    given to the error bodies too): the envelope by reference, as ``application/json``."""
    ref = {"$ref": "#/components/schemas/ErrorOut"}
    return {status: {"description": entry["description"],
                     "content": {"application/json": {"schema": ref}}}
            for status, entry in errors(*statuses).items()}
