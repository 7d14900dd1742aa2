"""``redact`` and the logging it is wired into (pure: no server, no event loop)."""

from __future__ import annotations

import logging

import jwt
from uvicorn.logging import AccessFormatter

from api.logs import InvalidUtf8Filter, RedactingFormatter, log_config, redacting
from api.redact import REDACTED, redact

TOKEN = jwt.encode({"sub": "1", "did": "2", "exp": 2_000_000_000}, "k" * 32, "HS256")


def test_a_jwt_anywhere_is_redacted() -> None:
    for text in (TOKEN, f"got {TOKEN}.", f'{{"access_token": "{TOKEN}"}}', f"({TOKEN})"):
        assert TOKEN not in redact(text) and REDACTED in redact(text)
    assert redact(f"a {TOKEN} b") == f"a {REDACTED} b"


def test_token_and_ticket_parameters_are_redacted_up_to_the_next_separator() -> None:
    line = '127.0.0.1:5 - "WebSocket /v1/ws?ticket=abc123&token=opaque-value&x=1" [accepted]'
    assert redact(line) == (f'127.0.0.1:5 - "WebSocket /v1/ws?ticket={REDACTED}'
                            f'&token={REDACTED}&x=1" [accepted]')
    assert redact("push_token=secret; n=1") == f"push_token={REDACTED}; n=1"
    assert redact("access_token=a b") == f"access_token={REDACTED} b"
    # uvicorn colours the request line: the escape after the value is not part of it
    assert redact("\x1b[1mGET /?token=abc\x1b[0m") == f"\x1b[1mGET /?token={REDACTED}\x1b[0m"


def test_bearer_credentials_are_redacted_but_prose_is_not() -> None:
    assert redact("Authorization: Bearer some.opaque-credential") == (
        f"Authorization: Bearer {REDACTED}")
    assert redact("sec-websocket-protocol: messenger.v1, bearer.0123456789abcdef") == (
        f"sec-websocket-protocol: messenger.v1, bearer.{REDACTED}")
    assert redact(f"protocol: messenger.v1, bearer.{TOKEN}") == (
        f"protocol: messenger.v1, bearer.{REDACTED}")
    for prose in ("missing bearer token", "token_type: bearer", "GET /v1/sync?limit=5 200",
                  "token bucket refilled", "eyJ is how a JWT starts"):
        assert redact(prose) == prose


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_the_formatter_redacts_arguments_and_tracebacks() -> None:
    formatter = RedactingFormatter(logging.Formatter("%(levelname)s %(message)s"))
    try:
        raise ValueError(f"bad url /v1/ws?token={TOKEN}")
    except ValueError as exc:
        line = formatter.format(_record("upgrade %s failed", f"/v1/ws?token={TOKEN}", exc=exc))
    assert TOKEN not in line
    assert line.startswith(f"ERROR upgrade /v1/ws?token={REDACTED} failed\nTraceback")
    assert f"ValueError: bad url /v1/ws?token={REDACTED}" in line


def test_the_invalid_utf8_record_becomes_one_warning_line() -> None:
    try:
        b"\xff".decode()
    except UnicodeDecodeError as exc:
        record = _record(InvalidUtf8Filter.UVICORN_MESSAGE, exc=exc)
    assert InvalidUtf8Filter().filter(record)
    line = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert line == f"WARNING {InvalidUtf8Filter.MESSAGE}"
    other = _record("Exception in ASGI application\n", exc=ValueError("a bug"))
    assert InvalidUtf8Filter().filter(other) and other.levelno == logging.ERROR
    assert other.exc_info is not None  # real errors keep their traceback


def test_the_log_config_redacts_every_handler_and_filters_uvicorn_error() -> None:
    config = log_config("warning")
    assert config["root"]["level"] == logging.WARNING
    assert config["loggers"]["uvicorn.error"]["filters"] == ["invalid_utf8"]
    for name, spec in config["formatters"].items():
        assert spec["()"] is redacting, name
    for name, handler in config["handlers"].items():
        assert handler["formatter"] in config["formatters"], name
    options = {k: v for k, v in config["formatters"]["access"].items() if k != "()"}
    access = redacting(**options)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/v1/ws?token={TOKEN}", "1.1", 101), None)
    line = access.format(record)
    assert TOKEN not in line and f"/v1/ws?token={REDACTED}" in line, line
    assert isinstance(access.inner, AccessFormatter)
