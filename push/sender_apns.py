"""APNs delivery through ``aioapns`` (HTTP/2, token authentication with a .p8 key).

aioapns has no URL parameter: it connects to its protocol class's ``APNS_SERVER`` and
``APNS_PORT``. Each sender gives its connection pool a subclass of the library's protocol with
its own host and port, so the library's classes are never modified. The subclass also mends
what the library leaves to chance: it reads each response body once the stream has ended (the
library parses every DATA frame on its own and waits forever for an error without a body),
hands the flow-control window back for the bodies it reads (the library never does, so a
long-lived connection stalls after 64 KiB of error bodies), keeps the ``Retry-After`` header,
and ignores late answers and lost connections for sends whose caller has given up (the
library would raise on the cancelled future and drop the connection, or leave the other sends
on that connection waiting).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from pathlib import Path
from typing import Any, ClassVar

import h2.exceptions
from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.connection import (
    APNsDevelopmentClientProtocol,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
)
from aioapns.exceptions import ConnectionClosed, MaxAttemptsExceeded
from aioapns.exceptions import ConnectionError as ApnsConnectionError
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from push.message import PushMessage, PushResult, PushStatus
from push.payload import apns_collapse_id, apns_payload
from push.retry import parse_retry_after

APNS_PRIORITY_IMMEDIATE = 10
_DEVICE_TOKEN = re.compile(r"[0-9a-fA-F]{32,200}")


class _ApnsProtocol(APNsTLSClientProtocol):
    """aioapns' HTTP/2 protocol, made robust (see the module docstring)."""

    retry_after_sink: ClassVar[dict[str, str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: dict[int, bytes] = {}

    def on_response_received(self, headers: dict[bytes, bytes]) -> None:
        notification_id = headers.get(b"apns-id", b"").decode("utf-8", errors="replace")
        pending = self.requests.get(notification_id)
        if pending is not None and pending.done():  # the caller timed out and left
            del self.requests[notification_id]
            return
        retry_after = headers.get(b"retry-after")
        if pending is not None and retry_after is not None:
            self.retry_after_sink[notification_id] = retry_after.decode("latin-1")
        super().on_response_received(headers)

    def on_data_received(self, data: bytes, stream_id: int) -> None:
        self.conn.acknowledge_received_data(len(data), stream_id)
        self.bodies[stream_id] = self.bodies.get(stream_id, b"") + data

    def connection_lost(self, exc: Exception | None) -> None:
        # The library fails every pending future here and would stop at the first one a
        # timed-out caller cancelled, leaving the others waiting.
        for notification_id, pending in list(self.requests.items()):
            if pending.done():
                del self.requests[notification_id]
        super().connection_lost(exc)

    def on_stream_ended(self, stream_id: int) -> None:
        super().on_stream_ended(stream_id)
        body = self.bodies.pop(stream_id, b"")
        notification_id = self.request_streams.pop(stream_id, None)
        if notification_id is None:
            return
        status = self.request_statuses.pop(notification_id, None)
        pending = self.requests.pop(notification_id, None)
        if status is None or pending is None or pending.done():
            return  # a 200 (already answered) or an abandoned send
        reason, timestamp = _error_body(body)
        pending.set_result(
            NotificationResult(notification_id, status, description=reason, timestamp=timestamp)
        )


def _protocol_class(
    host: str, port: int, retry_after_sink: dict[str, str]
) -> type[APNsTLSClientProtocol]:
    class _BoundProtocol(_ApnsProtocol):
        APNS_SERVER = host
        APNS_PORT = port

    _BoundProtocol.retry_after_sink = retry_after_sink
    return _BoundProtocol


def _error_body(body: bytes) -> tuple[str, int | None]:
    """``(reason, timestamp)`` from an APNs error body; empty when it is missing or unreadable."""
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:
        return "", None
    if not isinstance(data, dict):
        return "", None
    timestamp = data.get("timestamp")
    return str(data.get("reason", "")), timestamp if isinstance(timestamp, int) else None


async def _ignore_error(request: NotificationRequest, result: NotificationResult) -> None:
    """Silences aioapns' own error log: :meth:`ApnsSender.send` classifies and reports."""


class ApnsSender:
    """:class:`push.sender.PushSender` for Apple Push Notification service, token auth.

    ``endpoint`` (``host:port``) replaces Apple's server, and ``ca_file`` is a CA bundle to
    trust for it (proxies, tests). ``timeout_s`` bounds each send, including aioapns' own
    reconnection attempts (``connection_attempts``, one second apart).
    """

    def __init__(
        self,
        key_file: Path,
        key_id: str,
        team_id: str,
        topic: str,
        endpoint: str | None = None,
        ca_file: Path | None = None,
        use_sandbox: bool = False,
        *,
        timeout_s: float = 10.0,
        connection_attempts: int = 2,
    ) -> None:
        self.provider = "apns"
        self._key = _read_key(key_file)
        self._key_id = key_id
        self._team_id = team_id
        self._topic = topic
        self._timeout_s = timeout_s
        self._connection_attempts = connection_attempts
        default = APNsDevelopmentClientProtocol if use_sandbox else APNsProductionClientProtocol
        host, port = (
            _parse_endpoint(endpoint) if endpoint else (default.APNS_SERVER, default.APNS_PORT)
        )
        self._retry_after: dict[str, str] = {}
        self._protocol = _protocol_class(host, port, self._retry_after)
        self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._ssl.set_alpn_protocols(["h2"])
        self._client: APNs | None = None

    def _get_client(self) -> APNs:
        # Created on first use: aioapns binds its pool to the running event loop.
        if self._client is None:
            client = APNs(
                key=self._key,
                key_id=self._key_id,
                team_id=self._team_id,
                topic=self._topic,
                max_connection_attempts=self._connection_attempts,
                ssl_context=self._ssl,
                err_func=_ignore_error,
            )
            client.pool.protocol_class = self._protocol
            self._client = client
        return self._client

    async def send(self, msg: PushMessage) -> PushResult:
        """Send ``msg`` once through APNs and classify the answer (never raises for provider
        or network errors)."""
        if not _DEVICE_TOKEN.fullmatch(msg.token):  # it would end up in the request path
            return PushResult(PushStatus.INVALID_TOKEN, detail="malformed APNs device token")
        request = NotificationRequest(
            device_token=msg.token,
            message=apns_payload(msg),
            priority=APNS_PRIORITY_IMMEDIATE,
            collapse_key=apns_collapse_id(msg.collapse_key) if msg.collapse_key else None,
            push_type=PushType.ALERT,
            apns_topic=msg.topic,
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await self._get_client().send_notification(request)
        except TimeoutError:
            return PushResult(PushStatus.RETRY, detail=f"timed out after {self._timeout_s} s")
        except (MaxAttemptsExceeded, ApnsConnectionError, ConnectionClosed) as exc:
            return PushResult(PushStatus.RETRY, detail=f"APNs unreachable: {exc!r}")
        except (OSError, h2.exceptions.H2Error) as exc:
            return PushResult(PushStatus.RETRY, detail=f"APNs connection failed: {exc!r}")
        finally:
            retry_after = self._retry_after.pop(request.notification_id, None)
        return _classify(result, parse_retry_after(retry_after, time.time()))

    async def aclose(self) -> None:
        """Close the HTTP/2 connections."""
        client, self._client = self._client, None
        if client is not None:
            client.pool.close()
            await asyncio.sleep(0)  # let the transports report connection_lost


def _classify(result: NotificationResult, retry_after_s: float | None) -> PushResult:
    reason = result.description or ""
    detail = f"APNs {result.status} {reason}".strip()
    if result.is_successful:
        return PushResult(PushStatus.SENT, detail=result.notification_id)
    try:
        status = int(result.status)
    except ValueError:
        return PushResult(PushStatus.FAILED, detail=detail)
    # 410: the token is no longer active for the topic, whatever the reason's spelling.
    if status == 410 or (status == 400 and reason == "BadDeviceToken"):
        return PushResult(PushStatus.INVALID_TOKEN, detail=detail)
    if status == 429 or status >= 500:
        return PushResult(PushStatus.RETRY, retry_after_s=retry_after_s, detail=detail)
    return PushResult(PushStatus.FAILED, detail=detail)


def _read_key(key_file: Path) -> str:
    """The PEM text of the .p8 signing key, checked to be an EC private key."""
    try:
        text = key_file.read_text(encoding="ascii")
        key = load_pem_private_key(text.encode("ascii"), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"APNs key file {key_file}: not a readable PEM key ({exc})") from exc
    if not isinstance(key, EllipticCurvePrivateKey):
        raise ValueError(f"APNs key file {key_file}: not an EC (P-256) private key")
    return text


def _parse_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    host = host.strip("[]")  # "[::1]:443"
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"APNs endpoint {endpoint!r}: expected host:port")
    return host, int(port)
