"""The ``messenger`` client commands as a user runs them: subprocesses against a real server,
including ``messenger listen &`` in an interactive shell with job control (a background job
that read stdin would be stopped by SIGTTIN)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from PIL import Image

from tests.api.server import MessengerProcess
from tests.messenger_client.support import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
MESSENGER = [sys.executable, "-m", "api.cli"]  # what the ``messenger`` script runs
CLIENT_ONLY = [sys.executable, "-m", "messenger_client"]  # the same commands, 5x faster start


def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MESSENGER_")}
    return {**clean, "XDG_CONFIG_HOME": str(tmp_path / "config")}


def messenger(tmp_path: Path, *args: str, command: list[str] = CLIENT_ONLY, timeout: float = 60
              ) -> subprocess.CompletedProcess[str]:
    """``messenger ARGS`` (this tree's code), stdin closed, output captured."""
    return subprocess.run([*command, *args], cwd=ROOT, env=env(tmp_path),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def ok(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The JSON lines of a command that succeeded."""
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def signup(server: MessengerProcess, tmp_path: Path, prefix: str,
           command: list[str] = CLIENT_ONLY) -> tuple[str, str]:
    """``messenger login --signup``: (username, profile path)."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    profile = str(tmp_path / f"{name}.db")
    (out,) = ok(messenger(tmp_path, "login", "--server", server.url, "--username", name,
                          "--password", PASSWORD, "--signup", "--profile", profile,
                          command=command))
    assert out["username"] == name and out["profile"] == profile
    return name, profile


def wait_for_lines(path: Path, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"{path} has {len(lines)} lines, wanted {count}")


def test_tour_listen_send_sync_whoami(embedded: MessengerProcess, tmp_path: Path) -> None:
    """The README's tour through the ``messenger`` command itself."""
    def run(*args: str) -> list[dict[str, Any]]:
        return ok(messenger(tmp_path, *args, command=MESSENGER))

    _, alice_db = signup(embedded, tmp_path, "alice", MESSENGER)
    bob, bob_db = signup(embedded, tmp_path, "bob", MESSENGER)
    out, err = tmp_path / "bob.out", tmp_path / "bob.err"
    with out.open("w") as sink, err.open("w") as errors:
        listener = subprocess.Popen([*MESSENGER, "listen", "--profile", bob_db], cwd=ROOT,
                                    env=env(tmp_path), stdin=subprocess.DEVNULL, stdout=sink,
                                    stderr=errors)
    try:
        (receipt,) = run("send", "--profile", alice_db, "--to-username", bob, "hi", "bob")
        (entry,) = wait_for_lines(out, 1)
        assert (entry["kind"], entry["body"], entry["msg_id"]) == ("message", "hi bob",
                                                                   receipt["msg_id"])
        listener.send_signal(signal.SIGINT)  # Ctrl-C
        assert listener.wait(10) == 0
        assert "Traceback" not in err.read_text()
    finally:
        listener.kill()
        listener.wait()
    run("send", "--profile", alice_db, "--to-username", bob, "are you there?")
    missed = run("sync", "--profile", bob_db)
    assert [e["body"] for e in missed] == ["are you there?"]  # not "hi bob" again
    assert run("sync", "--profile", bob_db) == []
    (me,) = run("whoami", "--profile", bob_db)
    assert (me["username"], me["cursor"], me["outbox"]) == (bob, missed[-1]["id"], 0)
    note = ("send", "--profile", bob_db, "--to-user", me["user_id"], "--client-msg-id", "n1",
            "note")
    assert run(*note) == run(*note)  # a retried command stores nothing twice


def test_listen_as_a_background_job_of_an_interactive_shell(embedded: MessengerProcess,
                                                            tmp_path: Path) -> None:
    _, alice_db = signup(embedded, tmp_path, "alice")
    bob, bob_db = signup(embedded, tmp_path, "bob")
    out = tmp_path / "listen.out"
    shell = InteractiveShell(tmp_path)
    try:
        shell.run(f"cd {ROOT}")
        shell.run(f"{' '.join(MESSENGER)} listen --profile {bob_db} > {out} 2>&1 &")
        pid = int(shell.run("echo PID=$!", expect=r"PID=(\d+)"))
        ok(messenger(tmp_path, "send", "--profile", alice_db, "--to-username", bob, "psst"))
        (entry,) = wait_for_lines(out, 1)
        assert entry["body"] == "psst"
        assert _state(pid) != "T"  # not stopped by SIGTTIN: it never read the terminal
        assert shell.run("kill %1; wait %1; echo RC=$?", expect=r"RC=(\d+)") == "0"
    finally:
        shell.close()


def test_sends_queued_while_the_server_is_down_go_with_the_next_run(
        own_server: MessengerProcess, tmp_path: Path) -> None:
    _, alice_db = signup(own_server, tmp_path, "alice")
    bob, bob_db = signup(own_server, tmp_path, "bob")
    (bob_me,) = ok(messenger(tmp_path, "whoami", "--profile", bob_db))
    own_server.stop()
    to_bob = ["send", "--profile", alice_db, "--to-user", bob_me["user_id"]]
    timed_out = messenger(tmp_path, *to_bob, "--timeout", "1", "queued", "one")
    assert timed_out.returncode == 75 and "stays queued" in timed_out.stderr
    killed = subprocess.Popen([*CLIENT_ONLY, *to_bob, "queued two"],
                              cwd=ROOT, env=env(tmp_path), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_outbox(alice_db, 2)
    killed.kill()  # kill -9 while it waits for the server
    killed.wait()
    unreachable = messenger(tmp_path, "send", "--profile", alice_db, "--to-username", bob,
                            "x")
    assert unreachable.returncode == 75 and "unreachable" in unreachable.stderr
    own_server.start()
    (receipt,) = ok(messenger(tmp_path, *to_bob, "now"))
    got = ok(messenger(tmp_path, "sync", "--profile", bob_db))
    assert [e["body"] for e in got] == ["queued one", "queued two", "now"]
    assert got[-1]["msg_id"] == receipt["msg_id"]
    (alice_me,) = ok(messenger(tmp_path, "whoami", "--profile", alice_db))
    assert alice_me["outbox"] == 0


def test_mistakes_get_a_message_and_an_exit_code(embedded: MessengerProcess,
                                                 tmp_path: Path) -> None:
    alice, alice_db = signup(embedded, tmp_path, "alice")
    login = ["login", "--server", embedded.url, "--username", alice]
    wrong = messenger(tmp_path, *login, "--password", "not-her-password")
    assert wrong.returncode == 3 and "invalid_credentials" in wrong.stderr
    taken = messenger(tmp_path, *login, "--password", PASSWORD, "--signup")
    assert taken.returncode == 1 and "username_taken" in taken.stderr
    no_password = messenger(tmp_path, *login)  # no tty to ask on
    assert no_password.returncode == 1 and "--password" in no_password.stderr
    nobody = messenger(tmp_path, "send", "--profile", alice_db, "--to-username", "nobody-x", "hi")
    assert nobody.returncode == 1 and "not_found" in nobody.stderr
    empty = messenger(tmp_path, "listen", "--profile", str(tmp_path / "none.db"))
    assert empty.returncode == 3 and "log in" in empty.stderr
    usage = messenger(tmp_path, "send", "--profile", alice_db, "hi")
    assert usage.returncode == 2
    for done in (wrong, taken, no_password, nobody, empty, usage):
        assert "Traceback" not in done.stderr


def test_listen_piped_into_head_exits_quietly(embedded: MessengerProcess, tmp_path: Path) -> None:
    _, alice_db = signup(embedded, tmp_path, "alice")
    (me,) = ok(messenger(tmp_path, "whoami", "--profile", alice_db))
    for body in ("one", "two"):
        ok(messenger(tmp_path, "send", "--profile", alice_db, "--to-user", me["user_id"], body))
    done = subprocess.run(["bash", "-c", "set -o pipefail; \"$0\" -m messenger_client listen "
                           "--profile \"$1\" | head -n 1", sys.executable, alice_db], cwd=ROOT,
                          env=env(tmp_path), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["body"] == "one"
    assert "Traceback" not in done.stderr


def test_send_attach_and_download(embedded: MessengerProcess, tmp_path: Path) -> None:
    _, alice_db = signup(embedded, tmp_path, "alice")
    bob, bob_db = signup(embedded, tmp_path, "bob")
    picture, notes = tmp_path / "beach.png", tmp_path / "notes.txt"
    Image.new("RGB", (64, 48), "blue").save(picture)
    notes.write_text("bring snacks\n")
    to_bob = ["send", "--profile", alice_db, "--to-username", bob]
    (receipt,) = ok(messenger(tmp_path, *to_bob, "--attach", str(picture), "--attach",
                              str(notes)))  # no text: the files alone
    photo, doc = receipt["attachments"]
    assert (photo["name"], photo["width"], doc["name"]) == ("beach.png", 64, "notes.txt")
    ok(messenger(tmp_path, *to_bob, "--attach", str(notes), "see", "notes"))
    first, second = ok(messenger(tmp_path, "sync", "--profile", bob_db))
    assert (first["msg_id"], first["body"]) == (receipt["msg_id"], "")
    assert [a["attachment_id"] for a in first["attachments"]] == [
        photo["attachment_id"], doc["attachment_id"]]
    assert second["body"] == "see notes" and second["attachments"][0]["name"] == "notes.txt"

    saved = tmp_path / "saved"
    saved.mkdir()
    get_doc = ["download", "--profile", bob_db, doc["attachment_id"]]
    (out,) = ok(messenger(tmp_path, *get_doc, "-o", str(saved)))
    assert out["path"] == str(saved / "notes.txt") and out["size"] == doc["size"]
    assert (saved / "notes.txt").read_text() == "bring snacks\n"
    (saved / "notes.txt").write_text("mine")
    taken = messenger(tmp_path, *get_doc, "-o", str(saved))  # would replace a file: refused
    assert taken.returncode == 2 and "exists" in taken.stderr
    ok(messenger(tmp_path, *get_doc, "-o", str(saved / "notes.txt")))  # named: replaced
    assert (saved / "notes.txt").read_text() == "bring snacks\n"
    in_cwd = client_run(saved, "download", "--profile", bob_db, photo["attachment_id"])
    assert in_cwd.returncode == 0, in_cwd.stderr
    assert image_size((saved / "beach.png").read_bytes()) == (64, 48)
    raw = client_run(saved, "download", "--profile", bob_db, photo["thumbnail_id"], "-o", "-")
    assert raw.returncode == 0 and image_size(raw.stdout) == (64, 48)
    assert sorted(p.name for p in saved.iterdir()) == ["beach.png", "notes.txt"]  # no .part

    missing = messenger(tmp_path, *to_bob, "--attach", str(tmp_path / "nope.jpg"), "hi")
    nothing = messenger(tmp_path, *to_bob)
    unknown = messenger(tmp_path, "download", "--profile", bob_db, "123")
    nowhere = messenger(tmp_path, *get_doc, "-o", str(tmp_path / "no-such-dir" / "x.txt"))
    assert (missing.returncode, nothing.returncode, unknown.returncode, nowhere.returncode
            ) == (2, 2, 1, 2)
    assert "nope.jpg" in missing.stderr and "not_found" in unknown.stderr
    assert "cannot write" in nowhere.stderr
    assert ok(messenger(tmp_path, "sync", "--profile", bob_db)) == []  # nothing was sent
    for done in (taken, missing, nothing, unknown, nowhere):
        assert "Traceback" not in done.stderr


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def client_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``messenger ARGS`` (this tree's code) in ``cwd``, binary output captured."""
    return subprocess.run([*CLIENT_ONLY, *args], cwd=cwd,
                          env={**env(cwd), "PYTHONPATH": str(ROOT)},
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


class InteractiveShell:
    """``bash -i`` on a pseudo-terminal: job control, a terminal as stdin, as a user has."""

    def __init__(self, tmp_path: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the shell
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"],  # noqa: S606
                       {**env(tmp_path), "PS1": "$ ", "TERM": "dumb"})
        self._seen = ""

    def run(self, command: str, expect: str | None = None, timeout: float = 30) -> str:
        """Type a command; the first group of ``expect`` once it shows up."""
        os.write(self.fd, command.encode() + b"\n")
        if expect is None:
            return ""
        pattern = re.compile(expect)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := pattern.search(self._seen):
                self._seen = self._seen[found.end():]
                return found.group(1)
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                self._seen += os.read(self.fd, 65536).decode(errors="replace")
        raise AssertionError(f"no {expect!r} in shell output: {self._seen[-2000:]}")

    def close(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def _state(pid: int) -> str:
    """The process state letter from /proc (R, S, T for stopped...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_outbox(profile: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(profile) as db:
            if db.execute("SELECT count(*) FROM outbox").fetchone()[0] >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"outbox of {profile} never held {count} messages")
