"""The process's logging: one ``dictConfig`` for uvicorn's loggers and ours, in which every
handler's formatter redacts secrets (``api.redact``) from the whole line, traceback included,
and a filter turns uvicorn's traceback for a non-UTF-8 text frame into one warning line.

``messenger serve`` hands ``log_config`` to uvicorn (which applies it before serving);
``messenger push-worker`` applies it itself with ``configure``.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from uvicorn.config import LOG_LEVELS
from uvicorn.logging import AccessFormatter, DefaultFormatter

from api.redact import redact

APP_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Formats a record with ``inner``, then redacts the line (message, arguments, traceback).

    Redacting the formatted line rather than the record covers every way a secret gets in
    (uvicorn's access log passes the URL as an argument, an exception message may hold one)
    without changing the record that other handlers see.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def redacting(formatter: type[logging.Formatter], **options: Any) -> RedactingFormatter:
    """``dictConfig`` factory: a ``formatter(**options)`` wrapped in ``RedactingFormatter``."""
    return RedactingFormatter(formatter(**options))


class InvalidUtf8Filter(logging.Filter):
    """For the ``uvicorn.error`` logger: uvicorn's websockets-sansio protocol logs a text frame
    that is not valid UTF-8 as an ERROR with a traceback (``send_receive_event_to_app``),
    although the client is at fault and the protocol answers rightly (close 1007, RFC 6455
    8.1). This keeps one warning line and drops the traceback. There is one such record per
    connection at most: the protocol stops reading at the first bad frame and discards the
    rest, so a client can only repeat it by opening new connections (which are throttled).
    """

    UVICORN_MESSAGE = "Invalid UTF-8 sequence received from client."
    MESSAGE = "closed a WebSocket with 1007: the client sent a text frame that is not UTF-8"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self.UVICORN_MESSAGE:
            record.msg, record.args = self.MESSAGE, ()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's default logging (colours, stderr and stdout for access) plus a root handler
    for the application's loggers at ``level``, every formatter redacting."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"invalid_utf8": {"()": InvalidUtf8Filter}},
        "formatters": {
            "default": {"()": redacting, "formatter": DefaultFormatter,
                        "fmt": "%(levelprefix)s %(message)s", "use_colors": None},
            "access": {"()": redacting, "formatter": AccessFormatter,
                       "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" '
                              "%(status_code)s"},
            "app": {"()": redacting, "formatter": logging.Formatter, "fmt": APP_FORMAT},
        },
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler",
                        "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler",
                       "stream": "ext://sys.stdout"},
            "app": {"formatter": "app", "class": "logging.StreamHandler",
                    "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO", "filters": ["invalid_utf8"]},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["app"], "level": LOG_LEVELS[level.lower()]},
    }


def configure(level: str) -> None:
    """Apply ``log_config(level)`` (for commands that do not run uvicorn)."""
    logging.config.dictConfig(log_config(level))
