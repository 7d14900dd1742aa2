"""What a WebSocket upgrade to ``/v1/ws`` carries: its bearer token and the subprotocol to
answer. Pure functions over the request's header values.

A client authenticates in one of three ways, tried in this order:

1. ``Authorization: Bearer <token>`` (native apps, the CLI);
2. the ``Sec-WebSocket-Protocol`` header, for browsers, which cannot set headers on a
   WebSocket: ``new WebSocket(url, ["messenger.v1", "bearer." + token])``. The server answers
   with the ``messenger.v1`` subprotocol and never echoes the token. A JWT is base64url text
   joined by dots, all of them RFC 7230 ``tchar``s, so ``bearer.<jwt>`` is a valid subprotocol
   token (RFC 6455 4.1) that browsers accept. ``messenger.v1`` must be offered with it: a
   browser fails an upgrade whose answer selects none of the offered subprotocols;
3. ``?token=<token>`` (kept for compatibility): the token then sits in URLs, where proxies,
   browser history and other people's logs keep it. The server redacts it from its own logs.

The subprotocol keeps the token out of URLs without another round trip or any server-side
state, which a single-use ticket fetched over REST would need (a store shared by every node).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inbox.accounts.security import bearer_token
from inbox.core.errors import DomainError

SUBPROTOCOL = "messenger.v1"
"""The subprotocol the server speaks and selects whenever a client offers it."""
BEARER_PREFIX = "bearer."
"""A subprotocol ``bearer.<token>`` carries the access token."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """The token an upgrade presents (None: none) and the subprotocol to accept it with."""

    token: str | None
    subprotocol: str | None


def read_upgrade(authorization: str | None, subprotocols: Sequence[str],
                 query_token: str | None) -> Upgrade:
    """The token and subprotocol of an upgrade request, from its ``Authorization`` header,
    offered subprotocols and ``token`` query parameter.

    DomainError (400 ``invalid_subprotocol``) when a ``bearer.`` subprotocol comes without
    ``messenger.v1``, so that a browser client learns why instead of failing the handshake.
    """
    offered = [p.strip() for p in subprotocols]
    bearers = [p.removeprefix(BEARER_PREFIX) for p in offered if p.startswith(BEARER_PREFIX)]
    if bearers and SUBPROTOCOL not in offered:
        raise DomainError(f"offer the {SUBPROTOCOL!r} subprotocol with {BEARER_PREFIX!r}<token>",
                          code="invalid_subprotocol")
    token = bearer_token(authorization) or next(iter(bearers), None) or query_token
    return Upgrade(token or None, SUBPROTOCOL if SUBPROTOCOL in offered else None)


CLOSE_FOR_STATUS = {401: 4001, 429: 1013, 503: 1013}
"""How a refused upgrade closes an accepted browser socket (a browser sees no HTTP status):
4001 to stop and log in again, 1013 to come back later; anything else is 1008 (policy)."""


def refusal_close_code(status: int) -> int:
    """The close code telling a browser why its upgrade was refused (``CLOSE_FOR_STATUS``)."""
    return CLOSE_FOR_STATUS.get(status, 1008)


def is_browser(headers: Mapping[str, str]) -> bool:
    """Whether the upgrade comes from a browser, which always sends ``Origin`` and cannot read
    the status of a refused handshake (it only sees a 1006 close)."""
    return "origin" in headers
