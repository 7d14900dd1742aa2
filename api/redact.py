"""Secrets out of log lines: ``redact`` replaces every credential a line may carry by
``[redacted]``.

Access tokens live 30 days, so a log line holding one is a key to an account for that long.
Covered: anything shaped like a JWT (base64url ``{"`` header, three dot-separated parts), the
values of ``token=`` and ``ticket=`` (``access_token=``, ``push_token=``... too) in query
strings or forms, and the credential after ``Bearer`` (an ``Authorization`` header) or
``bearer.`` (the WebSocket subprotocol that carries a token).
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# "eyJ" is the base64url of '{"', the start of every JWT header.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# A parameter value ends at the next separator, quote, space or terminal escape (colours).
_PARAMETER = re.compile(r"(?i)(token|ticket)=[^\s&;,\"'<>\x1b]+")
# Short words after "bearer" ("bearer token") are prose, not credentials.
_BEARER = re.compile(r"(?i)\b(bearer)( +|\.)[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str) -> str:
    """``text`` with every credential it holds replaced by ``[redacted]``."""
    text = _JWT.sub(REDACTED, text)
    text = _PARAMETER.sub(rf"\1={REDACTED}", text)
    return _BEARER.sub(rf"\1\2{REDACTED}", text)
