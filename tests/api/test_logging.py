"""What a real ``messenger serve`` writes to its log: no access token, however it was sent, and
one warning line (no traceback) per connection that sends text frames that are not UTF-8.

Logging does not depend on the storage backend, so these run on the embedded default only.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from tests.api.server import Account, MessengerProcess, messenger, new_account
from tests.api.wsclient import open_ws

BAD_FRAMES_PER_CONNECTION = 5


@pytest.fixture
def info_server(tmp_path: Path) -> Iterator[MessengerProcess]:
    """A server at the default log level (info: access log on)."""
    with messenger(tmp_path, log_level="info") as proc:
        yield proc


@pytest.fixture
def debug_server(tmp_path: Path) -> Iterator[MessengerProcess]:
    """A server at debug level: the websockets library then logs handshake headers too."""
    with messenger(tmp_path, log_level="debug") as proc:
        yield proc


def _stopped_log(server: MessengerProcess) -> str:
    server.stop()  # flushes and closes every handler
    return server.log_path.read_text(errors="replace")


def _secret_parts(account: Account) -> list[str]:
    """The token and each of its three parts (a leaked signature alone would be a leak)."""
    return [account.token, *account.token.split(".")]


def _assert_no_secret(log: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in log


async def test_no_token_in_the_log_after_upgrades_and_rest_calls(
    debug_server: MessengerProcess,
) -> None:
    with debug_server.client() as client:
        alice = new_account(client)
        assert client.get("/v1/users/me", headers=alice.headers).status_code == 200
        # A token in a REST query string is ignored (401) but still reaches the access log.
        assert client.get(f"/v1/devices?token={alice.token}").status_code == 401
        refused = client.get("/v1/devices", headers={"Authorization": "Bearer not-a-valid-one"})
        assert refused.status_code == 401
    for ws in (await open_ws(debug_server.ws_url, alice, query_token=True),
               await open_ws(debug_server.ws_url, alice),
               await connect(debug_server.ws_url, subprotocols=[
                   Subprotocol("messenger.v1"), Subprotocol(f"bearer.{alice.token}")])):
        await ws.close()
    forged = alice.token[:-4] + ("AAAA" if not alice.token.endswith("AAAA") else "BBBB")
    with pytest.raises(InvalidStatus):
        await connect(f"{debug_server.ws_url}?token={forged}")

    log = _stopped_log(debug_server)
    _assert_no_secret(log, _secret_parts(alice) + [forged, "not-a-valid-one"])
    # The lines are there, redacted: the access log of both upgrades with ?token=, and the
    # handshake headers that websockets logs at debug level.
    assert len(re.findall(r'"WebSocket /v1/ws\?token=\[redacted\]"', log)) == 2
    assert "GET /v1/devices?token=[redacted] HTTP/1.1" in log
    assert re.search(r"Authorization: Bearer \[redacted\]", log, re.IGNORECASE)
    assert re.search(r"Sec-WebSocket-Protocol: messenger\.v1, bearer\.\[redacted\]", log,
                     re.IGNORECASE)


def _open_raw(server: MessengerProcess, account: Account
              ) -> tuple[socket.socket, ClientProtocol]:
    """A WebSocket driven by hand (websockets' sans-I/O client), past its ``hello`` frame."""
    proto = ClientProtocol(parse_uri(f"{server.ws_url}?token={account.token}"))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    proto.send_request(proto.connect())
    sock.sendall(b"".join(proto.data_to_send()))
    events = _receive_until(sock, proto, lambda e: isinstance(e, Frame))
    assert isinstance(events[0], Response) and events[0].status_code == 101
    hello = events[-1]
    assert isinstance(hello, Frame) and json.loads(bytes(hello.data))["op"] == "hello"
    return sock, proto


def _receive_until(sock: socket.socket, proto: ClientProtocol, done: object
                   ) -> list[object]:
    """Feed received bytes to ``proto`` until an event satisfies ``done`` (or EOF)."""
    assert callable(done)
    events: list[object] = []
    while not any(done(e) for e in events):
        data = sock.recv(65536)
        if not data:
            proto.receive_eof()
            break
        proto.receive_data(data)
        events.extend(proto.events_received())
    return events


def _close_code(sock: socket.socket, proto: ClientProtocol) -> int | None:
    """Read until the server's close frame; its code."""
    events = _receive_until(sock, proto,
                            lambda e: isinstance(e, Frame) and e.opcode is Opcode.CLOSE)
    closes = [e for e in events if isinstance(e, Frame) and e.opcode is Opcode.CLOSE]
    return Close.parse(closes[0].data).code if closes else None


def _send_bad_frames(sock: socket.socket, proto: ClientProtocol) -> None:
    """Several invalid text frames in one write, a fragmented one, then more in another."""
    for _ in range(BAD_FRAMES_PER_CONNECTION):
        proto.send_text(b"\xff\xfe not utf-8")
    proto.send_text(b'{"op": "pi', fin=False)
    proto.send_continuation(b"\xc3\x28", fin=True)  # an invalid 2-byte sequence
    sock.sendall(b"".join(proto.data_to_send()))
    for _ in range(BAD_FRAMES_PER_CONNECTION):
        proto.send_text(b"\xed\xa0\x80")  # an encoded surrogate: not UTF-8 either
    try:
        sock.sendall(b"".join(proto.data_to_send()))
    except OSError:
        pass  # the server may have closed already


async def test_invalid_utf8_text_frames_log_one_line_per_connection_and_no_traceback(
    info_server: MessengerProcess,
) -> None:
    with info_server.client() as client:
        alice, bob = new_account(client), new_account(client)
    bystander = await open_ws(info_server.ws_url, bob)
    connections = 3
    for _ in range(connections):
        sock, proto = _open_raw(info_server, alice)
        try:
            _send_bad_frames(sock, proto)
            assert _close_code(sock, proto) == 1007  # RFC 6455 8.1: invalid frame payload
        finally:
            sock.close()
    # Other connections are unaffected.
    await bystander.send(json.dumps({"op": "ping", "ref": "still-here"}))
    assert json.loads(await asyncio.wait_for(bystander.recv(), 5)) == {
        "op": "pong", "ref": "still-here"}
    await bystander.close()
    with info_server.client() as client:
        assert client.get("/healthz").status_code == 200

    log = _stopped_log(info_server)
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    utf8_lines = [line for line in log.splitlines() if "UTF-8" in line]
    assert len(utf8_lines) == connections, utf8_lines  # one per connection, not per frame
    assert all(line.startswith("WARNING") and "1007" in line for line in utf8_lines)

