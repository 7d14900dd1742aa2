"""Typed errors from REST answers and error frames (no server)."""

from __future__ import annotations

import pytest

from messenger_client.errors import (
    ApiError,
    Conflict,
    CredentialsError,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    TooLarge,
    Unavailable,
    error_from_frame,
    error_from_response,
)


@pytest.mark.parametrize(("status", "cls"), [
    (400, InvalidRequest), (401, CredentialsError), (403, Forbidden), (404, NotFound),
    (409, Conflict), (413, TooLarge), (422, InvalidRequest), (429, RateLimited),
    (500, Unavailable), (502, Unavailable), (503, Unavailable), (418, ApiError),
])
def test_status_picks_the_class_and_the_envelope_gives_code_and_message(
        status: int, cls: type[ApiError]) -> None:
    body = b'{"error": {"code": "some_code", "message": "what happened"}}'
    error = error_from_response(status, body, {})
    assert type(error) is cls
    assert (error.code, error.message, error.status) == ("some_code", "what happened", status)


def test_retry_after_header_and_bodies_that_are_not_envelopes() -> None:
    limited = error_from_response(429, b'{"error":{"code":"rate_limited","message":"x"}}',
                                  {"retry-after": "7"})
    assert isinstance(limited, RateLimited) and limited.retry_after_s == 7
    proxy = error_from_response(502, b"<html>Bad Gateway</html>", {"retry-after": "soon"})
    assert isinstance(proxy, Unavailable) and proxy.code == "http_502"
    assert "Bad Gateway" in proxy.message
    busy = error_from_response(503, b'{"error":{"code":"unavailable","message":"x"}}',
                               {"retry-after": "5"})
    assert isinstance(busy, Unavailable) and busy.retry_after_s == 5
    plain = error_from_response(503, b"", {})
    assert isinstance(plain, Unavailable) and plain.retry_after_s is None
    framed = error_from_frame({"code": "unavailable", "message": "m", "retry_after_ms": 4200})
    assert isinstance(framed, Unavailable) and framed.retry_after_s == 4.2
    empty = error_from_response(404, b"", {})
    assert isinstance(empty, NotFound) and empty.message == "HTTP 404"


def test_frame_codes_map_to_rest_statuses() -> None:
    assert isinstance(error_from_frame({"code": "forbidden", "message": "m"}), Forbidden)
    assert error_from_frame({"code": "invalid_frame", "message": "m"}).status == 400
    assert error_from_frame({"code": "group_full", "message": "m"}).status == 409
    unknown = error_from_frame({"code": "brand_new", "message": "m"})
    assert (type(unknown), unknown.status) == (InvalidRequest, 400)
