"""A push job: one notification for one device, as the durable queue stores it.

Pure data plus its JSON form. The job id is deterministic (``"<device id>:<entry id>"``), so
re-enqueueing the same fan-out (a retried send, a node that crashed half-way) cannot make a
second push: the queues deduplicate on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, cast

from push.message import Provider, PushMessage

JOB_FORMAT = 1
"""Version of the JSON layout written by :func:`encode_job`."""


class JobDecodeError(ValueError):
    """A stored job could not be read back (corrupt, foreign or from an unknown format)."""


def job_id_for(device_id: int, entry_id: int) -> str:
    """The deterministic id of the push for inbox entry ``entry_id`` on device ``device_id``."""
    return f"{device_id}:{entry_id}"


@dataclass(frozen=True)
class PushJob:
    """One push to deliver, possibly over several attempts.

    ``attempt`` is the 1-based number of the attempt the next claim will make;
    ``first_enqueued_ms`` (Unix ms) is when the push sequence began, against which the retry
    policy's maximum age is measured.
    """

    job_id: str
    device_id: int
    user_id: int
    message: PushMessage
    attempt: int = 1
    first_enqueued_ms: int = 0

    @property
    def provider(self) -> str:
        """The provider the device's token belongs to (``"fcm"``, ``"apns"``)."""
        return self.message.provider

    @property
    def token(self) -> str:
        """The device's push token the job was planned for."""
        return self.message.token

    @property
    def topic(self) -> str | None:
        """The APNs topic registered with the token, if any."""
        return self.message.topic

    def next_attempt(self) -> PushJob:
        """The same job, numbered for its following attempt."""
        return replace(self, attempt=self.attempt + 1)


def encode_job(job: PushJob) -> str:
    """The compact JSON text of ``job`` (stable key order, UTF-8 safe)."""
    msg = job.message
    return json.dumps(
        {
            "v": JOB_FORMAT,
            "job_id": job.job_id,
            "device_id": job.device_id,
            "user_id": job.user_id,
            "attempt": job.attempt,
            "first_enqueued_ms": job.first_enqueued_ms,
            "provider": msg.provider,
            "token": msg.token,
            "topic": msg.topic,
            "title": msg.title,
            "body": msg.body,
            "data": msg.data,
            "badge": msg.badge,
            "collapse_key": msg.collapse_key,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(name)
    # bool is an int subclass: a boolean is never a valid number here.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise JobDecodeError(f"push job field {name!r}: expected {kind}, got {value!r}")
    return value


def decode_job(text: str | bytes) -> PushJob:
    """Read a job written by :func:`encode_job`; :class:`JobDecodeError` if it is not one.

    The provider is taken as stored, even one this build does not know: the worker then
    dead-letters the job with a clear reason instead of losing it.
    """
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobDecodeError(f"push job is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise JobDecodeError("push job is not a JSON object")
    if obj.get("v") != JOB_FORMAT:
        raise JobDecodeError(f"push job format {obj.get('v')!r} is not {JOB_FORMAT}")
    data = _field(obj, "data", dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise JobDecodeError("push job field 'data': values must be strings")
    topic = obj.get("topic")
    body = obj.get("body")
    if topic is not None and not isinstance(topic, str):
        raise JobDecodeError(f"push job field 'topic': expected a string, got {topic!r}")
    if body is not None and not isinstance(body, str):
        raise JobDecodeError(f"push job field 'body': expected a string, got {body!r}")
    provider = _field(obj, "provider", str)
    attempt = _field(obj, "attempt", int)
    if attempt < 1:
        raise JobDecodeError(f"push job field 'attempt' must be >= 1, got {attempt}")
    message = PushMessage(
        provider=cast(Provider, provider),
        token=_field(obj, "token", str),
        topic=topic,
        title=_field(obj, "title", str),
        body=body,
        data=dict(data),
        badge=_field(obj, "badge", int),
        collapse_key=_field(obj, "collapse_key", str),
    )
    return PushJob(
        job_id=_field(obj, "job_id", str),
        device_id=_field(obj, "device_id", int),
        user_id=_field(obj, "user_id", int),
        message=message,
        attempt=attempt,
        first_enqueued_ms=_field(obj, "first_enqueued_ms", int),
    )
