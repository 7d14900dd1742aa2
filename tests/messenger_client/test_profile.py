"""The SQLite profile: session, cursor and outbox survive a reopen; shared by two processes'
connections; private to its owner (real SQLite files, no server)."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from messenger_client.models import Session
from messenger_client.profile import Profile, default_profile_path, ids_from_text, ids_to_text

ALICE = Session("http://h:1", "alice", 11, 21, "token-1")


def test_session_cursor_and_outbox_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with Profile(path) as profile:
        assert profile.session() is None and profile.cursor() == 0
        profile.save_session(ALICE)
        profile.commit_cursor(40)
        profile.enqueue("c1", "one", 7, None)
        profile.enqueue("c2", "two", None, 8)
    with Profile(path) as profile:
        assert profile.session() == ALICE
        assert profile.cursor() == 40
        assert [(i.client_msg_id, i.body, i.to_user, i.to_group) for i in profile.outbox()] == [
            ("c1", "one", 7, None), ("c2", "two", None, 8)]


def test_the_cursor_never_moves_back_whoever_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with Profile(path) as listener, Profile(path) as syncer:
        listener.save_session(ALICE)
        assert listener.commit_cursor(50) == 50
        assert syncer.commit_cursor(30) == 50
        assert syncer.commit_cursor(60) == 60
        assert listener.cursor() == 60


def test_enqueue_is_idempotent_and_remove_answers_it(tmp_path: Path) -> None:
    with Profile(tmp_path / "p.db") as profile:
        profile.save_session(ALICE)
        first = profile.enqueue("c1", "one", 7, None)
        assert profile.enqueue("c1", "changed", 9, None) == first
        second = profile.enqueue("c2", "two", 7, None)
        assert second.seq > first.seq
        profile.remove("c1")
        assert [i.client_msg_id for i in profile.outbox()] == ["c2"]


def test_a_new_login_of_the_same_device_keeps_cursor_and_outbox(tmp_path: Path) -> None:
    with Profile(tmp_path / "p.db") as profile:
        profile.save_session(ALICE)
        profile.commit_cursor(9)
        profile.enqueue("c1", "one", 7, None)
        profile.save_session(Session("http://h:1", "alice", 11, 21, "token-2"))
        assert profile.session() == Session("http://h:1", "alice", 11, 21, "token-2")
        assert (profile.cursor(), len(profile.outbox())) == (9, 1)


def test_another_device_starts_over(tmp_path: Path) -> None:
    with Profile(tmp_path / "p.db") as profile:
        profile.save_session(ALICE)
        profile.commit_cursor(9)
        profile.enqueue("c1", "one", 7, None)
        bob = Session("http://h:1", "bob", 12, 22, "token-3")
        profile.save_session(bob)
        assert profile.session() == bob
        assert (profile.cursor(), profile.outbox()) == (0, [])


def test_the_file_and_its_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "inbox-messenger" / "p.db"
    with Profile(path) as profile:
        profile.save_session(ALICE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_default_path_from_the_environment(tmp_path: Path) -> None:
    assert default_profile_path({"MESSENGER_PROFILE": "~/x.db"}) == Path("~/x.db").expanduser()
    assert default_profile_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "inbox-messenger" / "profile.db")
    assert default_profile_path({}) == Path.home() / ".config" / "inbox-messenger" / "profile.db"


def test_an_outbox_message_keeps_its_attachment_ids_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    big = 2**63 - 1
    with Profile(path) as profile:
        profile.save_session(ALICE)
        item = profile.enqueue("c1", "", 7, None, (big, 3))
        assert item.attachments == (big, 3)
        assert profile.enqueue("c1", "", 7, None, (4,)).attachments == (big, 3)  # as queued
        profile.enqueue("c2", "text only", 7, None)
    with Profile(path) as profile:
        assert [(i.client_msg_id, i.attachments) for i in profile.outbox()] == [
            ("c1", (big, 3)), ("c2", ())]


OLD_OUTBOX = """
CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), server_url TEXT NOT NULL,
    username TEXT NOT NULL, user_id INTEGER NOT NULL, device_id INTEGER NOT NULL,
    token TEXT NOT NULL, cursor INTEGER NOT NULL DEFAULT 0);
CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_msg_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, to_user INTEGER, to_group INTEGER);
INSERT INTO outbox (client_msg_id, body, to_user) VALUES ('old', 'queued before', 7);
"""


def test_a_profile_from_before_attachments_keeps_its_outbox(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_OUTBOX)
    with Profile(path) as profile:
        assert [(i.client_msg_id, i.body, i.attachments) for i in profile.outbox()] == [
            ("old", "queued before", ())]
        profile.enqueue("new", "", 7, None, (5,))
        profile._add_attachments_column()  # as a process that opened the old file meanwhile
    with Profile(path) as profile:
        assert [(i.client_msg_id, i.attachments) for i in profile.outbox()] == [
            ("old", ()), ("new", (5,))]


def test_attachment_ids_as_stored() -> None:
    assert ids_to_text(()) == "" and ids_from_text("") == ()
    assert ids_from_text(ids_to_text((1, 2**63 - 1))) == (1, 2**63 - 1)
