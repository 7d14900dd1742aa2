"""A local FCM: Google's OAuth2 token endpoint (JWT-bearer grant) and the HTTP v1
``messages:send`` endpoint, answering as Google documents from a scripted queue. Test support,
not a mock of pyfcm: the real client and google-auth talk HTTP to it."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# google-auth always addresses its assertion to Google's endpoint, whatever the token_uri.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)


@dataclass(frozen=True)
class FcmReply:
    """One scripted answer of ``messages:send``."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0


def google_error(
    code: int, status: str, message: str, error_code: str, *extra: dict[str, Any]
) -> dict[str, Any]:
    """An error body shaped like FCM v1's (``google.rpc.Status`` with an ``FcmError``)."""
    details = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code},
        *extra,
    ]
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


UNREGISTERED = FcmReply(
    404, google_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
)
INVALID_TOKEN = FcmReply(
    400,
    google_error(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        "INVALID_ARGUMENT",
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [
                {"field": "message.token", "description": "Invalid registration token"}
            ],
        },
    ),
)
INVALID_PAYLOAD = FcmReply(
    400,
    google_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data'", "INVALID_ARGUMENT"),
)
UNAVAILABLE = FcmReply(
    503, google_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
)
QUOTA_EXCEEDED = FcmReply(
    429,
    google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED"),
    headers=(("Retry-After", "7"),),
)


@dataclass
class FcmRequest:
    """One ``messages:send`` request as the fake received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def write_service_account(path: Path, token_uri: str, project_id: str) -> rsa.RSAPublicKey:
    """Write a Google service-account JSON with a fresh RSA key whose ``token_uri`` is
    ``token_uri``; returns the public key that verifies its assertions."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "fake-key-1",
        "private_key": pem,
        "client_email": f"push@{project_id}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return key.public_key()


class FakeFcm:
    """The server. ``replies`` answer the next sends (then 200 with a message name)."""

    def __init__(self, project_id: str = "demo-project", expires_in: int = 3600) -> None:
        self.project_id = project_id
        self.expires_in = expires_in
        self.replies: deque[FcmReply] = deque()
        self.requests: list[FcmRequest] = []
        self.token_requests: list[dict[str, Any]] = []
        self.issued: set[str] = set()
        self.trusted: list[rsa.RSAPublicKey] = []
        self.base_url = ""
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def token_uri(self) -> str:
        """Where service accounts get their access tokens."""
        return f"{self.base_url}/token"

    def reply(self, *replies: FcmReply) -> None:
        """Queue answers for the next sends."""
        self.replies.extend(replies)

    def write_service_account(self, path: Path) -> Path:
        """Write a service-account JSON pointing at this fake and trust its key."""
        self.trusted.append(write_service_account(path, self.token_uri, self.project_id))
        return path

    async def start(self) -> None:
        """Listen on a free loopback port."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop the server."""
        await self._runner.cleanup()

    def _verify(self, assertion: str) -> dict[str, Any] | None:
        for key in self.trusted:
            try:
                claims: dict[str, Any] = jwt.decode(
                    assertion,
                    key,
                    algorithms=["RS256"],
                    audience=[GOOGLE_TOKEN_URI, self.token_uri],
                )
            except jwt.PyJWTError:
                continue
            return claims
        return None

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        claims = self._verify(str(form.get("assertion", "")))
        self.token_requests.append({"form": dict(form), "claims": claims})
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if claims is None or FCM_SCOPE not in str(claims.get("scope", "")).split():
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                status=400,
            )
        token = f"fake-access-{len(self.token_requests)}"
        self.issued.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(FcmRequest(request.path, dict(request.headers), body))
        if request.match_info["project"] != self.project_id:
            message = "Permission 'cloudmessaging.messages.create' denied (or it may not exist)."
            return web.json_response(
                google_error(403, "PERMISSION_DENIED", message, "PERMISSION_DENIED"), status=403
            )
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.issued:
            return web.json_response(
                google_error(401, "UNAUTHENTICATED", "Bad credentials.", "THIRD_PARTY_AUTH_ERROR"),
                status=401,
            )
        if not self.replies:
            name = f"projects/{self.project_id}/messages/{len(self.requests)}"
            return web.json_response({"name": name})
        reply = self.replies.popleft()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        return web.json_response(reply.body, status=reply.status, headers=dict(reply.headers))
