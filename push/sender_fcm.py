"""FCM HTTP v1 delivery through ``pyfcm``, bounded: one attempt per send, off the event loop.

pyfcm is synchronous and retries on its own (urllib3 retries 502/503 with backoff, and it
sleeps and re-sends on every ``Retry-After`` without limit). Retrying is the push worker's
job (:mod:`push.retry`), so this adapter configures pyfcm's ``FCMNotification`` to make
exactly one request: its session gets an ``HTTPAdapter(max_retries=0)``, and ``send_request``
is overridden to return the response instead of sleeping. pyfcm still builds the request
(``parse_payload``), holds the session and the credentials, and sends it. Each send runs in a
worker thread (``asyncio.to_thread``) bounded by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account
from pyfcm import FCMNotification
from pyfcm.errors import FCMError
from requests.adapters import HTTPAdapter

from push.message import PushMessage, PushResult, PushStatus
from push.payload import fcm_message
from push.retry import parse_retry_after

FCM_SCOPES = ["https://www.googleapis.com/auth/firebase.messaging"]
DEFAULT_ENDPOINT = "https://fcm.googleapis.com"


class _TimeoutRequest(google.auth.transport.requests.Request):
    """google-auth's transport with a bounded timeout (its default is 120 s)."""

    def __init__(self, session: requests.Session, timeout_s: float) -> None:
        super().__init__(session)
        self._timeout_s = timeout_s

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        return super().__call__(  # type: ignore[no-untyped-call]
            url, method, body, headers, timeout=timeout or self._timeout_s, **kwargs
        )


class _OneShotFCM(FCMNotification):  # type: ignore[misc]  # pyfcm has no type hints
    """pyfcm's client making exactly one HTTP request per send (plus one re-send when Google
    reports the access token expired), with a shared, cached access token."""

    def __init__(
        self, credentials: service_account.Credentials, endpoint: str, timeout_s: float
    ) -> None:
        self.adapter = HTTPAdapter(max_retries=0)
        super().__init__(credentials=credentials, adapter=self.adapter)
        # Instance attribute: the class (and pyfcm's) stays untouched.
        self.FCM_END_POINT_BASE = endpoint.rstrip("/") + "/v1/projects"
        self.timeout_s = timeout_s
        self.token_lock = threading.Lock()
        self.auth_session = requests.Session()
        self.auth_session.mount("http://", HTTPAdapter(max_retries=0))
        self.auth_session.mount("https://", HTTPAdapter(max_retries=0))
        self.auth_request = _TimeoutRequest(self.auth_session, timeout_s)

    def _get_access_token(self, force: bool = False) -> str:
        # pyfcm refreshes on every call and wraps failures in InvalidDataError; here the token
        # is shared by all threads, fetched only when expired, and errors keep their type
        # (TransportError: retry later; RefreshError: credentials rejected).
        with self.token_lock:
            if force or not self.credentials.valid:
                self.credentials.refresh(self.auth_request)
            token: str = self.credentials.token
            return token

    def send_request(self, payload: bytes | None = None, timeout: float | None = None) -> Any:
        """POST ``payload`` once. Unlike pyfcm's, never sleeps on ``Retry-After``."""
        response = self._post(payload, timeout, force_token=False)
        if self._is_access_token_expired(response):
            response = self._post(payload, timeout, force_token=True)
        return response

    def _post(self, payload: bytes | None, timeout: float | None, force_token: bool) -> Any:
        # The Authorization header goes on each request: pyfcm's per-thread session header is
        # only renewed every 30 minutes, whatever the token's lifetime.
        headers = {"Authorization": "Bearer " + self._get_access_token(force=force_token)}
        return self.requests_session.post(
            self.fcm_end_point,
            data=payload,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        )

    def close(self) -> None:
        self.adapter.close()
        self.auth_session.close()


class FcmSender:
    """:class:`push.sender.PushSender` for Firebase Cloud Messaging (HTTP v1 API).

    ``credentials_file`` is a Google service-account JSON; its ``token_uri`` is where access
    tokens come from. ``endpoint`` replaces ``https://fcm.googleapis.com`` (scheme, host,
    port; the path ``/v1/projects/<project_id>/messages:send`` is kept).
    """

    def __init__(
        self, credentials_file: Path, endpoint: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.provider = "fcm"
        self._timeout_s = timeout_s
        try:
            credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                str(credentials_file), scopes=FCM_SCOPES
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(
                f"FCM credentials file {credentials_file}: not a readable service-account "
                f"JSON ({exc})"
            ) from exc
        if not credentials.project_id:
            raise ValueError(f"FCM credentials file {credentials_file}: no project_id")
        self._client = _OneShotFCM(credentials, _check_endpoint(endpoint), timeout_s)

    async def send(self, msg: PushMessage) -> PushResult:
        """Send ``msg`` once through FCM and classify the answer (never raises for provider
        or network errors)."""
        message = fcm_message(msg)
        try:
            async with asyncio.timeout(self._timeout_s):
                return await asyncio.to_thread(self._send_blocking, message)
        except TimeoutError:
            return PushResult(PushStatus.RETRY, detail=f"timed out after {self._timeout_s} s")

    def _send_blocking(self, message: dict[str, Any]) -> PushResult:
        client = self._client
        try:
            payload = client.parse_payload(
                fcm_token=message["token"],
                notification_title=message["notification"]["title"],
                notification_body=message["notification"].get("body"),
                data_payload=message["data"],
                android_config=message["android"],
                apns_config=message["apns"],
            )
            response = client.send_request(payload, self._timeout_s)
        except google.auth.exceptions.RefreshError as exc:
            status = PushStatus.RETRY if exc.retryable else PushStatus.FAILED
            return PushResult(status, detail=f"access token refused: {exc}")
        except google.auth.exceptions.TransportError as exc:
            return PushResult(PushStatus.RETRY, detail=f"token endpoint unreachable: {exc}")
        except requests.RequestException as exc:
            return PushResult(PushStatus.RETRY, detail=f"FCM unreachable: {exc}")
        except (FCMError, google.auth.exceptions.GoogleAuthError) as exc:
            return PushResult(PushStatus.FAILED, detail=f"FCM client error: {exc}")
        return self._classify(response)

    def _classify(self, response: requests.Response) -> PushResult:
        status = response.status_code
        if status == 200:
            try:
                name = self._client.parse_response(response).get("name", "")
            except (FCMError, ValueError) as exc:  # pyfcm: an empty 200 is a server error
                return PushResult(PushStatus.RETRY, detail=f"FCM 200 without a result: {exc}")
            return PushResult(PushStatus.SENT, detail=str(name))
        error = _google_error(response)
        detail = f"FCM {status} {error.get('status', '')}: {error.get('message', '')}".strip()
        if _is_invalid_token(status, error):
            return PushResult(PushStatus.INVALID_TOKEN, detail=detail)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
            return PushResult(PushStatus.RETRY, retry_after_s=retry_after, detail=detail)
        return PushResult(PushStatus.FAILED, detail=detail)

    async def aclose(self) -> None:
        """Close pyfcm's HTTP connection pools and the token session."""
        self._client.close()


def _check_endpoint(endpoint: str | None) -> str:
    if endpoint is None:
        return DEFAULT_ENDPOINT
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(
            f"FCM endpoint {endpoint!r}: expected scheme://host[:port] such as {DEFAULT_ENDPOINT}"
        )
    return endpoint


def _google_error(response: requests.Response) -> dict[str, Any]:
    """The ``error`` object of a Google API error body, or ``{}`` when there is none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _details(error: dict[str, Any]) -> list[dict[str, Any]]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict)]


def _is_invalid_token(status: int, error: dict[str, Any]) -> bool:
    """Whether Google says the registration token is unregistered or malformed.

    A bare 404 without Google's error body (a misrouted proxy, a wrong endpoint) is not taken
    as "unregistered": that would delete every token of a misconfigured deployment.
    """
    details = _details(error)
    codes = {d["errorCode"] for d in details if "errorCode" in d}
    if status == 404:
        # An FcmError code other than UNREGISTERED names some other missing thing.
        return "UNREGISTERED" in codes or (not codes and error.get("status") == "NOT_FOUND")
    if status == 400 and (error.get("status") == "INVALID_ARGUMENT" or "INVALID_ARGUMENT" in codes):
        fields = {
            violation.get("field")
            for d in details
            for violation in d.get("fieldViolations", [])
            if isinstance(violation, dict)
        }
        message = str(error.get("message", "")).lower()
        return "message.token" in fields or "registration token" in message
    return False
