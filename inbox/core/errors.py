"""Domain errors shared by every layer.

Each error carries the API's snake_case ``code`` and HTTP ``status``: REST turns it into the
error envelope, the gateway into an ``error`` frame. Raising one never has a side effect that a
retry could double.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A refusal that the client caused or can act on; ``retry_after_s``, when given, says
    how long to wait before the same request may succeed (the ``Retry-After`` header)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        if code is not None:
            self.code = code

    @property
    def http_headers(self) -> dict[str, str]:
        """Headers an HTTP answer to this error carries (REST and refused upgrades)."""
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(self.retry_after)}

    @property
    def retry_after(self) -> int:
        """Whole seconds for the ``Retry-After`` header: rounded up, at least 1."""
        return max(1, math.ceil(self.retry_after_s or 0))

    @property
    def retry_after_ms(self) -> int:
        """Milliseconds to wait, rounded up, at least 1 (the ``error`` frame's field)."""
        return max(1, math.ceil((self.retry_after_s or 0) * 1000))


class InvalidInput(DomainError):
    status = 422
    code = "invalid_request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class InvalidCredentials(Unauthorized):
    """A login with a wrong username or password: the failure that login limits count."""

    code = "invalid_credentials"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class TooLarge(DomainError):
    status = 413
    code = "message_too_large"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    retry_after_s: float  # always given

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s=retry_after_s)


class NodeBusy(DomainError):
    """This node takes no new WebSocket now, another node (or this one later) will: it is
    draining (``draining``) or admitting upgrades at its limit (``overloaded``)."""

    status = 503
    code = "overloaded"
    retry_after_s: float  # always given

    def __init__(self, message: str, *, retry_after_s: float, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after_s=retry_after_s)


class Unavailable(DomainError):
    """A backing store cannot take the request; nothing happened and a retry is safe.

    Its message is fixed text naming the dependency: a store's own error text can carry
    internals (queries, keys, addresses) and goes to the log instead (``dependency_failed``).
    A refusal that knows when it will clear (another attempt of the same send holds its key)
    gives ``retry_after_s``.
    """

    status = 503
    code = "unavailable"


def dependency_failed(dependency: str, operation: str, error: BaseException | str
                      ) -> Unavailable:
    """Log why ``dependency`` failed ``operation`` and return the 503 to raise, whose message
    names only the dependency."""
    log.warning("%s: %s failed: %s", dependency, operation, error)
    return Unavailable(f"{dependency} is unavailable; retry later")
