"""A local APNs: an HTTP/2 TLS server (``h2``) answering ``POST /3/device/<token>`` as Apple
documents, from a scripted queue. Test support, not a mock of aioapns: the real client talks
HTTP/2 to it over TLS with ALPN ``h2``."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded
from h2.exceptions import ProtocolError

APNS_KEY_ID = "ABC123DEFG"
APNS_TEAM_ID = "DEF123GHIJ"
APNS_TOPIC = "im.inbox.app"


@dataclass(frozen=True)
class ApnsReply:
    """One scripted answer. ``chunks`` is how many DATA frames carry the error body (Apple
    uses one; 0 sends none); ``delay_s`` holds the answer back."""

    status: int = 200
    reason: str | None = None
    timestamp: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    chunks: int = 1
    delay_s: float = 0.0

    def body(self) -> bytes:
        """The JSON error body Apple sends with a non-200 status."""
        data: dict[str, Any] = {"reason": self.reason or ""}
        if self.timestamp is not None:
            data["timestamp"] = self.timestamp
        return json.dumps(data).encode()


OK = ApnsReply()
BAD_DEVICE_TOKEN = ApnsReply(400, "BadDeviceToken")
UNREGISTERED = ApnsReply(410, "Unregistered", timestamp=1_700_000_000_000)
TOO_MANY_REQUESTS = ApnsReply(429, "TooManyRequests", headers=(("retry-after", "7"),))
SERVICE_UNAVAILABLE = ApnsReply(503, "ServiceUnavailable")


@dataclass
class ApnsRequest:
    """One request as the fake received it (header names lower-case)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    claims: dict[str, Any] = field(default_factory=dict)


def write_p8_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Write a fresh EC P-256 signing key as Apple's .p8 files hold it (PKCS#8 PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def write_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """Write a self-signed CA and a server certificate for 127.0.0.1 / localhost signed by it;
    returns ``(ca_file, cert_file, key_file)``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-apns test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "server.pem", "key.pem"))
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


class FakeApns:
    """The server. Answers from ``replies`` (then 200). A missing or badly signed provider
    token gets 403 like Apple's, when ``public_key`` is given to check it against."""

    def __init__(
        self,
        tls_dir: Path,
        public_key: ec.EllipticCurvePublicKey | None,
        team_id: str,
        key_id: str,
    ) -> None:
        self.ca_file, cert_file, key_file = write_tls_files(tls_dir)
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(cert_file, key_file)
        self._ssl.set_alpn_protocols(["h2"])
        self.public_key = public_key
        self.team_id = team_id
        self.key_id = key_id
        self.replies: deque[ApnsReply] = deque()
        self.requests: list[ApnsRequest] = []
        self._arrived = asyncio.Event()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self.port = 0

    @property
    def endpoint(self) -> str:
        """``host:port`` to give the sender."""
        return f"127.0.0.1:{self.port}"

    def reply(self, *replies: ApnsReply) -> None:
        """Queue answers for the next requests."""
        self.replies.extend(replies)

    async def start(self) -> None:
        """Listen on a free loopback port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _H2ServerProtocol(self), "127.0.0.1", 0, ssl=self._ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            self.drop_connections()
            await self._server.wait_closed()
            await asyncio.sleep(0)

    async def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> None:
        """Wait until ``count`` requests have arrived in all."""
        async with asyncio.timeout(timeout_s):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()

    def drop_connections(self) -> None:
        """Close every open connection, as a server restart would."""
        for transport in list(self._transports):
            transport.close()

    def authorize(self, authorization: str | None) -> tuple[str | None, dict[str, Any]]:
        """``(error reason or None, JWT claims)`` for an ``authorization`` header value."""
        if not authorization or not authorization.startswith("bearer "):
            return "MissingProviderToken", {}
        token = authorization.removeprefix("bearer ")
        try:
            if jwt.get_unverified_header(token).get("kid") != self.key_id:
                return "InvalidProviderToken", {}
            if self.public_key is None:
                return None, jwt.decode(token, options={"verify_signature": False})
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"])
        except jwt.PyJWTError:
            return "InvalidProviderToken", {}
        return (None if claims.get("iss") == self.team_id else "InvalidProviderToken"), claims


class _H2ServerProtocol(asyncio.Protocol):
    def __init__(self, fake: FakeApns) -> None:
        self.fake = fake
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fake.connections += 1
        self.fake._transports.add(transport)
        self.conn.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.fake._transports.discard(self.transport)

    def flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                headers = {str(k): str(v) for k, v in event.headers or []}
                self.streams[event.stream_id or 0] = (headers, bytearray())
            elif isinstance(event, DataReceived) and event.stream_id in self.streams:
                self.streams[event.stream_id][1].extend(event.data or b"")
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
            elif isinstance(event, StreamEnded) and event.stream_id in self.streams:
                self.on_request(event.stream_id, *self.streams.pop(event.stream_id))
            elif isinstance(event, ConnectionTerminated) and self.transport is not None:
                self.transport.close()
        self.flush()

    def on_request(self, stream_id: int, headers: dict[str, str], raw: bytearray) -> None:
        error, claims = self.fake.authorize(headers.get("authorization"))
        body = json.loads(raw.decode()) if raw else {}
        self.fake.requests.append(ApnsRequest(headers[":path"], headers, body, claims))
        self.fake._arrived.set()
        if error is not None:
            reply = ApnsReply(403, error)
        elif headers.get(":method") != "POST" or not headers[":path"].startswith("/3/device/"):
            reply = ApnsReply(405 if headers.get(":method") != "POST" else 404, "BadPath")
        else:
            reply = self.fake.replies.popleft() if self.fake.replies else OK
        apns_id = headers.get("apns-id", "")
        if reply.delay_s:
            asyncio.get_running_loop().call_later(
                reply.delay_s, self.answer, stream_id, apns_id, reply
            )
        else:
            self.answer(stream_id, apns_id, reply)

    def answer(self, stream_id: int, apns_id: str, reply: ApnsReply) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        headers = [(":status", str(reply.status)), ("apns-id", apns_id), *reply.headers]
        if reply.status == 200 or reply.chunks == 0:
            self.conn.send_headers(stream_id, headers, end_stream=True)
        else:
            body = reply.body()
            self.conn.send_headers(stream_id, headers)
            size = -(-len(body) // reply.chunks)
            pieces = [body[i : i + size] for i in range(0, len(body), size)]
            for index, piece in enumerate(pieces):
                self.conn.send_data(stream_id, piece, end_stream=index == len(pieces) - 1)
                self.flush()  # each piece its own DATA frame, even in one TCP write
        self.flush()
