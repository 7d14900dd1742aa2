"""The ``messenger`` command: ``serve`` (the default embedded server), ``migrate``,
``push-worker``, and the client commands of ``messenger_client.cli``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack

from pydantic import ValidationError

from api.logs import configure, log_config
from api.settings import Settings
from api.wiring import open_push_workers
from messenger_client import cli as client_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="messenger",
                                     description="Inbox Messenger server and client")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API and WebSocket server")
    serve.add_argument("--host", help="listen address (MESSENGER_HOST)")
    serve.add_argument("--port", type=int, help="listen port (MESSENGER_PORT)")
    serve.add_argument("--data-dir", help="embedded data directory (MESSENGER_DATA_DIR)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--workers", type=int, help="server processes sharing the port; "
                       "production backend only (MESSENGER_WORKERS)")
    commands.add_parser("migrate", help="create the Cassandra keyspace and tables")
    worker = commands.add_parser("push-worker", help="run push workers only (no HTTP server)")
    worker.add_argument("--data-dir", help="embedded data directory (MESSENGER_DATA_DIR)")
    client_cli.add_commands(commands)
    return parser


OVERRIDES = ("host", "port", "data_dir", "workers")
"""``serve`` flags that override their ``MESSENGER_*`` variables."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k in OVERRIDES if (v := getattr(args, k, None)) is not None}
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command in client_cli.COMMANDS:
        raise SystemExit(client_cli.run(args))
    try:
        settings = _settings(args)
    except ValidationError as exc:  # a configuration mistake: say what to set, no traceback
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise SystemExit(f"messenger: invalid configuration: {reasons}") from None
    if args.command == "serve":
        _serve(settings, args.log_level)
    elif args.command == "migrate":
        _migrate(settings)
    elif args.command == "push-worker":
        configure("info")
        asyncio.run(_push_worker(settings))


def _serve(settings: Settings, log_level: str) -> None:
    """Run the server: one process, or ``settings.workers`` sharing the port (each its own
    node of the production backend, sharing nothing but Redis and Cassandra)."""
    import uvicorn

    from api.app import create_app
    from api.ws_protocol import LeanWebSocketProtocol

    if settings.workers > 1:
        # Each worker builds its app from the environment: carry the flags over to it.
        os.environ.update({f"MESSENGER_{name.upper()}": str(getattr(settings, name))
                           for name in OVERRIDES})
    uvicorn.run(
        "api.app:create_app" if settings.workers > 1 else create_app(settings),
        factory=settings.workers > 1,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=log_config(log_level),
        # websockets-sansio (api.logs quiets its log of bad text frames), with deflate
        # that holds no state on idle sockets.
        ws=LeanWebSocketProtocol,
        ws_max_size=256 * 1024,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=5,
    )


async def _push_worker(settings: Settings) -> None:
    """Run ``MESSENGER_PUSH_WORKERS`` (at least one) push workers until SIGTERM or SIGINT.

    Serve with ``MESSENGER_PUSH_WORKERS=0`` to scale pushing separately from the API nodes.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        await open_push_workers(settings, stack)
        await stop.wait()


def _migrate(settings: Settings) -> None:
    """Create the Cassandra keyspace and every missing table (serve does it on start-up too)."""
    if settings.backend == "embedded":
        print("embedded store: its schema is created on start-up; nothing to migrate")
        return
    from inbox.storage.cql_session import CqlSession

    async def run() -> None:
        cql = await CqlSession.connect(settings.cassandra_host_list(), settings.cassandra_keyspace,
                                       statements={}, replication=settings.replication())
        await cql.close()

    asyncio.run(run())
    print(f"keyspace {settings.cassandra_keyspace!r}: schema up to date")


if __name__ == "__main__":
    main()
