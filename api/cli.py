"""The ``messenger`` command: ``serve`` (the default embedded server), ``migrate``,
``push-worker``, and the client commands of ``messenger_client.cli``."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack

import uvicorn

from api.app import create_app
from api.logs import configure, log_config
from api.settings import Settings
from api.wiring import open_push_workers
from api.ws_protocol import LeanWebSocketProtocol
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
    commands.add_parser("migrate", help="create the Cassandra keyspace and tables")
    worker = commands.add_parser("push-worker", help="run push workers only (no HTTP server)")
    worker.add_argument("--data-dir", help="embedded data directory (MESSENGER_DATA_DIR)")
    client_cli.add_commands(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k in ("host", "port", "data_dir") if (v := getattr(args, k, None))}
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command in client_cli.COMMANDS:
        raise SystemExit(client_cli.run(args))
    settings = _settings(args)
    if args.command == "serve":
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=args.log_level,
            log_config=log_config(args.log_level),
            # websockets-sansio (api.logs quiets its log of bad text frames), with deflate
            # that holds no state on idle sockets.
            ws=LeanWebSocketProtocol,
            ws_max_size=256 * 1024,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            timeout_graceful_shutdown=5,
        )
    elif args.command == "migrate":
        _migrate(settings)
    elif args.command == "push-worker":
        configure("info")
        asyncio.run(_push_worker(settings))


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
    from inbox.cql_session import CqlSession

    async def run() -> None:
        cql = await CqlSession.connect(settings.cassandra_host_list(), settings.cassandra_keyspace,
                                       statements={}, replication=settings.replication())
        await cql.close()

    asyncio.run(run())
    print(f"keyspace {settings.cassandra_keyspace!r}: schema up to date")


if __name__ == "__main__":
    main()
