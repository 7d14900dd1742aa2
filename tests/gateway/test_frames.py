"""Frame parsing without a socket: every malformed frame maps to the API's error code."""

from __future__ import annotations

import json

import pytest

from gateway import frames
from gateway.frames import FrameError, parse_frame, require_id
from inbox.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "invalid_frame"),
        ("{", "invalid_json"),
        ("[" * 100000, "invalid_json"),
        ('{"op": "sync", "cur_max_msg_id": ' + "9" * 5000 + "}", "invalid_json"),
        ("3", "invalid_frame"),
        ('{"op": 3}', "invalid_frame"),
        ('{"op": "dance"}', "unknown_op"),
    ],
)
def test_bad_frames(text: str | None, code: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_frame(text)
    assert info.value.code == code


def test_ref_is_kept_for_replies() -> None:
    with pytest.raises(FrameError) as info:
        parse_frame('{"op": "dance", "ref": "r9"}')
    assert info.value.ref == "r9"
    frame = parse_frame('{"op": "sync", "cur_max_msg_id": "12", "ref": "a"}')
    assert frame.ref == "a" and require_id(frame, "cur_max_msg_id") == 12
    assert frames.with_ref({"op": "pong"}, "a") == {"op": "pong", "ref": "a"}


def test_ids_accept_strings_and_integers_only() -> None:
    assert require_id(parse_frame('{"op": "ack", "cur_max_msg_id": 7}'), "cur_max_msg_id") == 7
    with pytest.raises(FrameError):
        require_id(parse_frame('{"op": "ack", "cur_max_msg_id": [1]}'), "cur_max_msg_id")
    with pytest.raises(InvalidInput):
        require_id(parse_frame('{"op": "ack", "cur_max_msg_id": "-3"}'), "cur_max_msg_id")


def test_server_frames() -> None:
    assert frames.entries([{"id": "5"}], 5) == {"op": "entries", "entries": [{"id": "5"}],
                                                "cur_max_msg_id": "5"}
    assert json.loads(frames.encode(frames.error("x", "y", "r"))) == {
        "op": "error", "code": "x", "message": "y", "ref": "r"}
