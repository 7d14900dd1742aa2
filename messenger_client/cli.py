"""The ``messenger`` client commands: ``login``, ``listen``, ``send``, ``sync``, ``whoami``,
``download``.

They share one profile file per device (``--profile``, else ``$MESSENGER_PROFILE``, else
``~/.config/inbox-messenger/profile.db``). Output is JSON, one object per line, on stdout;
diagnostics go to stderr. No command reads stdin (``messenger listen &`` is safe in a shell);
``login`` asks for a missing password on the terminal.

Exit codes: 0 done, 1 refused by the server, 2 bad usage, 3 not logged in or credentials
refused (log in again), 75 server unreachable or no answer in time (try again later).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from messenger_client.client import Client, login
from messenger_client.downloads import TargetExists, download_target, save
from messenger_client.errors import (
    ApiError,
    ConnectionFailed,
    CredentialsError,
    MessengerError,
    NotLoggedIn,
)
from messenger_client.events import Connected, Disconnected, Presence, SendFailed, Sent, Typing
from messenger_client.models import Entry, Json
from messenger_client.outbox import MAX_ATTACHMENTS, check_send
from messenger_client.profile import Profile, default_profile_path
from messenger_client.rest import PLATFORMS

COMMANDS = frozenset({"login", "listen", "send", "sync", "whoami", "download"})
EXIT_REFUSED, EXIT_USAGE, EXIT_CREDENTIALS, EXIT_TEMPFAIL = 1, 2, 3, 75
SERVER_ENV, PASSWORD_ENV = "MESSENGER_SERVER", "MESSENGER_PASSWORD"


class UsageError(MessengerError):
    """A command given wrongly (exit 2), found after parsing: a missing file, a taken name."""


def add_commands(commands: Any) -> None:
    """Add the client commands to an ``argparse`` subparsers object (the ``messenger``
    command's)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", help="profile file (default: $MESSENGER_PROFILE or "
                        "~/.config/inbox-messenger/profile.db)")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="connection status and logs on stderr")
    cmd = commands.add_parser("login", parents=[common],
                              help="log in (--signup: create the account first)")
    cmd.add_argument("--server", default=os.environ.get(SERVER_ENV, "http://127.0.0.1:8000"),
                     help="server URL (default: $MESSENGER_SERVER or http://127.0.0.1:8000)")
    cmd.add_argument("--username", required=True)
    cmd.add_argument("--password", help="default: $MESSENGER_PASSWORD, else asked on the tty")
    cmd.add_argument("--signup", action="store_true", help="create the account first")
    cmd.add_argument("--display-name")
    cmd.add_argument("--device-name")
    cmd.add_argument("--platform", default="cli", choices=PLATFORMS)
    cmd = commands.add_parser("listen", parents=[common],
                              help="print inbox entries live as JSON lines until Ctrl-C")
    cmd.add_argument("--all", action="store_true",
                     help="also print presence, typing and send results ({\"event\": ...})")
    cmd = commands.add_parser("send", parents=[common], help="send a message")
    target = cmd.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-user", type=int, metavar="ID")
    target.add_argument("--to-username", metavar="NAME")
    target.add_argument("--to-group", type=int, metavar="ID")
    cmd.add_argument("--client-msg-id", help="idempotency key (default: a fresh one)")
    cmd.add_argument("--timeout", type=float, default=30.0,
                     help="seconds to wait for the server (the message stays queued after)")
    cmd.add_argument("--attach", action="append", default=[], metavar="PATH",
                     help="upload this file (a photo or any file) and send it with the "
                     f"message; repeatable, at most {MAX_ATTACHMENTS}")
    cmd.add_argument("text", nargs="*", help="the message (words are joined by spaces); "
                     "may be left out with --attach")
    cmd = commands.add_parser("sync", parents=[common],
                              help="print the entries that arrived since the last run")
    cmd.add_argument("--page-size", type=int, default=200)
    commands.add_parser("whoami", parents=[common], help="the profile's user and device")
    cmd = commands.add_parser("download", parents=[common],
                              help="save an attachment (a photo's thumbnail has its own id)")
    cmd.add_argument("attachment_id", type=int, metavar="ATTACHMENT_ID")
    cmd.add_argument("-o", "--output", metavar="PATH",
                     help="the file to write (replaced if it exists), a directory to save "
                     "it in under its own name, or - for stdout (default: its own name in "
                     "the current directory, never replacing a file)")


def run(args: argparse.Namespace) -> int:
    """Run one client command; its exit code."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
        "login": _login, "listen": _listen, "send": _send, "sync": _sync, "whoami": _whoami,
        "download": _download}
    try:
        return asyncio.run(handlers[args.command](args))
    except (UsageError, TargetExists) as exc:
        _complain(str(exc))
        return EXIT_USAGE
    except (CredentialsError, NotLoggedIn) as exc:
        _complain(f"{exc} (log in again: messenger login)")
        return EXIT_CREDENTIALS
    except ConnectionFailed as exc:
        _complain(f"server unreachable: {exc}")
        return EXIT_TEMPFAIL
    except ApiError as exc:
        _complain(str(exc))
        return EXIT_TEMPFAIL if exc.status >= 500 or exc.status == 429 else EXIT_REFUSED
    except (MessengerError, ValueError) as exc:
        _complain(str(exc))
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m messenger_client <command>``: the client commands without the server."""
    parser = argparse.ArgumentParser(prog="messenger", description="Inbox Messenger client")
    add_commands(parser.add_subparsers(dest="command", required=True))
    raise SystemExit(run(parser.parse_args(argv)))


def _profile(args: argparse.Namespace) -> Path:
    return default_profile_path() if args.profile is None else Path(args.profile).expanduser()


async def _login(args: argparse.Namespace) -> int:
    password = args.password or os.environ.get(PASSWORD_ENV) or _ask_password()
    with Profile(_profile(args)) as profile:
        session = await login(args.server, args.username, password, profile=profile,
                              signup=args.signup, display_name=args.display_name,
                              device_name=args.device_name, platform=args.platform)
        _print({"server": session.server_url, "username": session.username,
                "user_id": str(session.user_id), "device_id": str(session.device_id),
                "profile": str(profile.path.resolve())})
    return 0


def _ask_password() -> str:
    if not sys.stdin.isatty():
        raise MessengerError(f"no password: give --password or set {PASSWORD_ENV}")
    return getpass.getpass("password: ")


async def _listen(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # a background job may ignore SIGINT
            loop.add_signal_handler(sig, stop.set)
    async with Client(_profile(args)) as client:
        printer = asyncio.create_task(_print_events(client, args.all))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({printer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (printer, stopper):
            task.cancel()
        await asyncio.gather(printer, stopper, return_exceptions=True)
        if printer in done:
            printer.result()  # the error that stopped the client, or a closed stdout
    return 0


async def _print_events(client: Client, everything: bool) -> None:
    async for event in client.events():
        if isinstance(event, Entry):
            if not _print(event.to_json()):
                return
            client.commit(event)
        elif isinstance(event, Connected | Disconnected):
            logging.getLogger("messenger").info("%s", event)
        elif everything and not _print(_event_json(event)):
            return


def _event_json(event: Presence | Typing | Sent | SendFailed) -> Json:
    if isinstance(event, Presence):
        return {"event": "presence", "user_id": str(event.user_id), "status": event.status,
                "last_seen": event.last_seen.isoformat() if event.last_seen else None}
    if isinstance(event, Typing):
        return {"event": "typing", "conversation_id": event.conversation_id,
                "user_id": str(event.user_id)}
    if isinstance(event, Sent):
        return {"event": "sent", **event.receipt.to_json()}
    return {"event": "send_failed", "client_msg_id": event.client_msg_id,
            "code": event.error.code, "message": event.error.message}


async def _send(args: argparse.Namespace) -> int:
    text, files = " ".join(args.text), _files_to_attach(args.attach)
    if not text and not files:
        raise UsageError("give the message TEXT, or --attach PATH")
    async with Client(_profile(args), receive=False) as client:
        to_user = args.to_user
        if args.to_username is not None:
            to_user = (await client.api.find_user(args.to_username)).user_id
        # Refused before anything is uploaded for it; the uploads need the server, the send
        # is then queued like any other.
        cmid = check_send(text, to_user, args.to_group, args.client_msg_id,
                          has_attachments=bool(files))
        uploaded = [await client.api.upload(path) for path in files]
        item = client.enqueue(text, to_user=to_user, to_group=args.to_group, client_msg_id=cmid,
                              attachments=[a.attachment_id for a in uploaded])
        try:
            async with asyncio.timeout(args.timeout):
                receipt = await client.wait_sent(item.client_msg_id)
        except TimeoutError:
            _complain(f"no answer within {args.timeout:g} s; message {item.client_msg_id} "
                      "stays queued and goes with the next `messenger send` or `listen`")
            return EXIT_TEMPFAIL
        out = receipt.to_json()
        if uploaded:
            out["attachments"] = [a.to_json() for a in uploaded]
        _print(out)
    return 0


def _files_to_attach(paths: list[str]) -> list[Path]:
    """The ``--attach`` files, each an existing regular file, at most ``MAX_ATTACHMENTS``."""
    files = [Path(p).expanduser() for p in paths]
    if len(files) > MAX_ATTACHMENTS:
        raise UsageError(f"at most {MAX_ATTACHMENTS} --attach files per message")
    for path in files:
        if not path.is_file():
            raise UsageError(f"--attach {path}: no such file")
    return files


async def _download(args: argparse.Namespace) -> int:
    async with contextlib.aclosing(Client(_profile(args), receive=False)) as client:
        info = await client.api.attachment(args.attachment_id)
        if args.output == "-":
            try:
                await client.api.download(info.attachment_id, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            except BrokenPipeError:
                _discard_stdout()
            return 0
        target, replace = _download_target(args.output, info.name, info.attachment_id)
        try:
            await save(client.api, info.attachment_id, target, replace)
        except OSError as exc:  # no such directory, no permission, disk full
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        _print({**info.to_json(), "path": str(target)})
    return 0


def _download_target(output: str | None, name: str, attachment_id: int) -> tuple[Path, bool]:
    """``download_target`` for the ``-o`` option, made absolute (it is printed)."""
    path = None if output is None else Path(output).expanduser()
    target, replace = download_target(name, attachment_id, path,
                                      path is not None and path.is_dir())
    return target.absolute(), replace


async def _sync(args: argparse.Namespace) -> int:
    async with contextlib.aclosing(Client(_profile(args))) as client:
        async for entry in client.catch_up(args.page_size):
            if not _print(entry.to_json()):
                break
    return 0


async def _whoami(args: argparse.Namespace) -> int:
    async with contextlib.aclosing(Client(_profile(args), receive=False)) as client:
        session = client.session
        out: Json = {"server": session.server_url, "username": session.username,
                     "user_id": str(session.user_id), "device_id": str(session.device_id),
                     "cursor": str(client.cursor), "outbox": len(client.pending()),
                     "profile": str(client.profile.path.resolve())}
        try:
            out["display_name"] = (await client.api.me()).display_name
        finally:
            _print(out)
    return 0


def _print(obj: Json) -> bool:
    """One JSON line on stdout, flushed (a pipe or file sees it at once); False once stdout
    is closed (``| head -1``)."""
    try:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return False
    return True


def _discard_stdout() -> None:
    """Stdout was closed by its reader: send the rest nowhere (no error at exit)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _complain(message: str) -> None:
    print(f"messenger: {message}", file=sys.stderr)
