"""Decoding the server's frames and building the client's (no server)."""

from __future__ import annotations

import json

import pytest

from messenger_client import frames
from messenger_client.errors import CredentialsError, ProtocolError, RateLimited
from messenger_client.events import Presence, Typing

ENTRY = {"id": "12", "kind": "message", "msg_id": "12", "conversation_id": "d:1:2",
         "sender_id": "1", "sender_device_id": "3", "created_at": "2025-01-01T00:00:00.123Z",
         "body": "hi"}


def test_decodes_every_server_frame() -> None:
    assert frames.decode('{"op":"hello","session_id":"s","heartbeat_interval_ms":1000}') == \
        frames.Hello("s", 1000)
    batch = frames.decode(json.dumps({"op": "entries", "entries": [ENTRY],
                                      "cur_max_msg_id": "12"}))
    assert isinstance(batch, frames.Entries) and batch.entries[0].body == "hi"
    assert batch.entries[0].to_json() == ENTRY
    assert frames.decode('{"op":"sync_started","cur_max_msg_id":"5","ref":"r"}') == \
        frames.SyncStarted(5, "r")
    sent = frames.decode('{"op":"sent","client_msg_id":"c","msg_id":"9","id":"10",'
                         '"conversation_id":"d:1:2","created_at":"2025-01-01T00:00:00.000Z",'
                         '"ref":"send:c"}')
    assert isinstance(sent, frames.SentFrame) and sent.ref == "send:c"
    assert (sent.receipt.msg_id, sent.receipt.id) == (9, 10)
    assert "op" not in sent.receipt.to_json() and "ref" not in sent.receipt.to_json()
    assert frames.decode('{"op":"pong"}') == frames.Pong(None)
    assert frames.decode('{"op":"goaway","reconnect_after_ms":250}') == frames.GoAway(250)
    presence = frames.decode('{"op":"presence","user_id":"4","status":"online",'
                             '"last_seen":"2025-01-01T00:00:00.000Z"}')
    assert isinstance(presence, Presence) and presence.user_id == 4
    assert frames.decode('{"op":"typing","conversation_id":"g:5","user_id":"4"}') == \
        Typing("g:5", 4)
    assert frames.decode('{"op":"shiny_new_thing"}') == frames.Unknown("shiny_new_thing")


def test_error_frames_carry_the_status_of_their_code() -> None:
    expired = frames.decode('{"op":"error","code":"token_expired","message":"log in"}')
    assert isinstance(expired, frames.ErrorFrame) and isinstance(expired.error, CredentialsError)
    limited = frames.decode('{"op":"error","code":"rate_limited","message":"slow",'
                            '"retry_after_ms":1500,"ref":"send:c"}')
    assert isinstance(limited, frames.ErrorFrame) and limited.ref == "send:c"
    assert isinstance(limited.error, RateLimited) and limited.error.retry_after_s == 1.5
    assert limited.error.status == 429


@pytest.mark.parametrize("text", [
    "not json", "[1]", '{"no":"op"}', '{"op":"hello"}', '{"op":"hello",'
    '"heartbeat_interval_ms":true}', '{"op":"entries"}',
    '{"op":"entries","entries":[{"id":"x"}]}', '{"op":"sync_started","cur_max_msg_id":"-1"}',
])
def test_frames_off_the_contract_are_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        frames.decode(text)


def test_builds_client_frames_with_ids_as_strings() -> None:
    assert json.loads(frames.sync(5, "r")) == {"op": "sync", "cur_max_msg_id": "5", "ref": "r"}
    assert json.loads(frames.send("c", "hi", to_user=None, to_group=9)) == {
        "op": "send", "client_msg_id": "c", "body": "hi", "to_group": "9"}
    assert json.loads(frames.ack(7)) == {"op": "ack", "cur_max_msg_id": "7"}
    assert json.loads(frames.typing("g:1")) == {"op": "typing", "conversation_id": "g:1"}
    assert json.loads(frames.ping()) == {"op": "ping"}
    assert "é" in frames.send("c", "é", to_user=1, to_group=None)  # UTF-8, not \\u escapes


def test_a_send_names_its_attachments_as_strings_only_when_it_has_some() -> None:
    frame = json.loads(frames.send("c", "", to_user=1, to_group=None,
                                   attachments=(2**60 + 1, 7), ref="send:c"))
    assert frame == {"op": "send", "client_msg_id": "c", "body": "", "to_user": "1",
                     "attachments": [str(2**60 + 1), "7"], "ref": "send:c"}
    assert "attachments" not in json.loads(frames.send("c", "hi", to_user=1, to_group=None))
