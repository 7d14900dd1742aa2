"""``read_upgrade``: which token an upgrade presents and which subprotocol answers it."""

from __future__ import annotations

import jwt
import pytest
from websockets.headers import build_subprotocol, parse_subprotocol
from websockets.typing import Subprotocol

from gateway.handshake import (
    BEARER_PREFIX,
    SUBPROTOCOL,
    Upgrade,
    is_browser,
    read_upgrade,
    refusal_close_code,
)
from inbox.core.errors import DomainError

TOKEN = jwt.encode({"sub": "1", "did": "2", "exp": 2_000_000_000}, "k" * 32, "HS256")


def test_the_header_wins_then_the_subprotocol_then_the_query() -> None:
    offered = [SUBPROTOCOL, f"bearer.{TOKEN}"]
    assert read_upgrade("Bearer from-header", offered, "from-query") == Upgrade(
        "from-header", SUBPROTOCOL)
    assert read_upgrade(None, offered, "from-query") == Upgrade(TOKEN, SUBPROTOCOL)
    assert read_upgrade(None, [], "from-query") == Upgrade("from-query", None)
    assert read_upgrade(None, [], None) == Upgrade(None, None)
    assert read_upgrade(None, [SUBPROTOCOL, "bearer."], "") == Upgrade(None, SUBPROTOCOL)


def test_messenger_v1_is_selected_whenever_offered_and_the_token_never() -> None:
    assert read_upgrade("Bearer t", ["chat", SUBPROTOCOL], None).subprotocol == SUBPROTOCOL
    assert read_upgrade("Bearer t", ["chat"], None).subprotocol is None
    upgrade = read_upgrade(None, [f" bearer.{TOKEN}", f"{SUBPROTOCOL} "], None)
    assert upgrade == Upgrade(TOKEN, SUBPROTOCOL)


def test_a_bearer_subprotocol_without_messenger_v1_is_a_400() -> None:
    with pytest.raises(DomainError) as info:
        read_upgrade(None, [f"bearer.{TOKEN}"], None)
    assert info.value.status == 400 and info.value.code == "invalid_subprotocol"
    assert SUBPROTOCOL in info.value.message


def test_bearer_jwt_is_a_valid_subprotocol_token() -> None:
    """RFC 6455 4.1: each subprotocol is an RFC 7230 token; a JWT is base64url (no padding)
    and dots, all tchars. websockets (the server's parser, like browsers) accepts it whole."""
    value = Subprotocol(BEARER_PREFIX + TOKEN)
    header = build_subprotocol([Subprotocol(SUBPROTOCOL), value])
    assert parse_subprotocol(header) == [SUBPROTOCOL, value]


def test_a_refusal_closes_a_browser_socket_with_a_code_it_can_act_on() -> None:
    assert refusal_close_code(401) == 4001  # log in again
    assert refusal_close_code(429) == refusal_close_code(503) == 1013  # come back later
    assert refusal_close_code(400) == 1008
    assert is_browser({"origin": "https://app.example"})
    assert not is_browser({"authorization": "Bearer x"})
