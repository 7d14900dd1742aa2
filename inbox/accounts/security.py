"""Passwords (salted scrypt from the standard library) and access tokens (JWT HS256)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

import jwt

from idgen.clock import SYSTEM_CLOCK, Clock
from inbox.core.errors import Unauthorized
from inbox.core.models import Caller

# scrypt with N=2**14, r=8, p=1 costs ~16 MiB and ~50 ms: slow for guessing, fine for logins.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024)


def hash_password_sync(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a fresh random salt."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password_sync(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a ``hash_password_sync`` string."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(actual, base64.b64decode(digest))


async def hash_password(password: str) -> str:
    """Hash off the event loop (scrypt is deliberately slow)."""
    return await asyncio.to_thread(hash_password_sync, password)


async def verify_password(password: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password_sync, password, stored)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


class TokenIssuer:
    """Issues and checks device tokens: ``sub`` user id, ``did`` device id, ``exp``."""

    algorithm = "HS256"

    def __init__(self, secret: str, ttl_s: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock

    def issue(self, caller: Caller) -> IssuedToken:
        now = self._clock.now_ms() // 1000
        claims = {
            "sub": str(caller.user_id),
            "did": str(caller.device_id),
            "iat": now,
            "exp": now + self.ttl_s,
        }
        return IssuedToken(jwt.encode(claims, self._secret, self.algorithm), self.ttl_s)

    def verify(self, token: str) -> Caller:
        """The caller a valid token speaks for; Unauthorized (expired, bad signature...)."""
        claims = self._claims(token)
        try:
            return Caller(int(claims["sub"]), int(claims["did"]))
        except (KeyError, ValueError, TypeError):
            raise Unauthorized("the token is invalid", code="invalid_token") from None

    def expires_at(self, token: str) -> float:
        """When a valid token expires (Unix seconds); Unauthorized if it is not valid."""
        return float(self._claims(token)["exp"])

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[self.algorithm], options={"require": ["exp"]}
            )
            return claims
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", code="token_expired") from None
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise Unauthorized("the token is invalid", code="invalid_token") from None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
