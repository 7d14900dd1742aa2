"""Group send latency with push planning: ``python -m bench.bench_send [--messages N]
[--cassandra HOST:PORT [--redis-url URL]]``.

Opens the services as ``messenger serve`` wires them, with push workers off so that only
planning and enqueueing are measured: embedded in a temp dir, or with ``--cassandra`` on
Redis + Cassandra (a keyspace of its own, dropped afterwards, and a Redis of its own unless
given one, since the push stream fills up). Makes a 100-member group and sends to it one
message at a time (``--concurrency`` senders), printing sends/s and p50/p95/p99 per send
for each case (first, for reference, 1:1 sends to an offline peer with a push token):
- ``no tokens``: no member has a push token (the planner only lists devices);
- ``tokens, all offline``: every member's device has a token and no socket (every recipient
  gets a push: badge and job for each);
- ``tokens, mixed``: half the members online on the live bus and a quarter muted (they need
  no badge), the rest offline.
Each case has a fresh group of fresh users and runs ``--repeat`` times (unread counts, hence
badge reads, grow along); the median run is printed with every run's rate beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import uuid
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path

from api.settings import Settings
from api.wiring import Services, open_services
from bench.measure import Sample, drive, load_average, median_of
from inbox.core.ids import group_conversation_id
from inbox.core.models import Caller, Device, PushTarget, User
from inbox.messages.service import SendRequest

MEMBERS = 100
SEED_BATCH = 50


async def new_user(services: Services, token: bool) -> Caller:
    """A fresh user with one phone (with a push token if ``token``), written to the store."""
    now = services.clock.now_ms()
    user_id, device_id = services.stores.next_id(), services.stores.next_id()
    await services.accounts.create_user(User(user_id, f"b{user_id}", "Bench", "-", now))
    await services.accounts.put_device(Device(device_id, user_id, "phone", "android", True, 0,
                                              now))  # fmt: skip
    if token:
        await services.accounts.set_push(device_id, PushTarget("fcm", f"t{device_id}"))
    return Caller(user_id, device_id)


async def make_group(services: Services, tokens: bool, mixed: bool) -> tuple[Caller, int]:
    """A fresh 100-member group (so unread counts start at 0): its owner, online, and id.

    Users and devices are written straight to the account store; with ``tokens`` every
    device has a push token; ``mixed`` puts half the other members online and mutes the
    group for a quarter.
    """
    members = [await new_user(services, tokens) for _ in range(MEMBERS)]
    owner, ids = members[0], [m.user_id for m in members]
    # In halves: the production store seeds each new inbox's sequencer with its own Redis
    # call, all at once, and 100 of them exhaust the client's pool of 100 connections.
    group = await services.groups.create(owner, "bench", ids[1:SEED_BATCH])
    for start in range(SEED_BATCH, MEMBERS, SEED_BATCH):
        await services.groups.add_members(owner, group.group_id, ids[start:start + SEED_BATCH])
    await services.bus.register(owner.user_id, owner.device_id)
    for n, member in enumerate(members[1:] if mixed else []):
        if n % 2 == 0:
            await services.bus.register(member.user_id, member.device_id)
        elif n % 4 == 1:
            await services.stores.mutes.set_mute(member.user_id,
                                                 group_conversation_id(group.group_id), None)
    return owner, group.group_id


async def case(services: Services, name: str, sender: Caller, to: dict[str, int], count: int,
               concurrency: int) -> Sample:
    """``count`` sends by ``sender`` (``to``: ``to_group`` or ``to_user``), ``concurrency``
    at a time."""

    async def send(_: int) -> None:  # a fresh client_msg_id: a repeated one is a replay
        request = SendRequest(body="see you at 8?", client_msg_id=uuid.uuid4().hex,
                              to_user=to.get("to_user"), to_group=to.get("to_group"))
        await services.messages.send(sender, request)

    seconds, latencies, cpu = await drive(send, count, concurrency)
    return Sample(name, count, seconds, "sends", latencies, cpu)


CASES = {"no tokens": (False, False), "tokens, all offline": (True, False),
         "tokens, mixed": (True, True)}


def settings_for(args: argparse.Namespace, data_dir: Path, redis_url: str | None) -> Settings:
    """The embedded default, or Redis + Cassandra in a fresh keyspace with ``--cassandra``."""
    if args.cassandra is None:
        return Settings(data_dir=data_dir, push_workers=0)
    return Settings(data_dir=data_dir, push_workers=0, redis_url=redis_url,
                    cassandra_hosts=args.cassandra,
                    cassandra_keyspace=f"bench_{uuid.uuid4().hex[:12]}",
                    jwt_secret="bench-secret-of-at-least-32-characters")  # noqa: S106


async def drop_keyspace(settings: Settings) -> None:
    """Remove the production run's keyspace."""
    from inbox.storage.cql_session import CqlSession

    cql = await CqlSession.connect(settings.cassandra_host_list(),
                                   settings.cassandra_keyspace, statements={}, migrate=False)
    try:
        await asyncio.to_thread(cql.session.execute,
                                f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}")
    finally:
        await cql.close()


async def run_cases(settings: Settings, args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        services = await open_services(settings, stack)
        sender, peer = await new_user(services, False), await new_user(services, True)
        await services.bus.register(sender.user_id, sender.device_id)
        name = f"{settings.backend} 1:1, peer offline with a token"
        await median_of(args.repeat, partial(case, services, name, sender,
                                             {"to_user": peer.user_id}, args.messages,
                                             args.concurrency))
        for label, (tokens, mixed) in CASES.items():
            sender, group_id = await make_group(services, tokens, mixed)
            name = f"{settings.backend} 100-member group, {label}"
            await median_of(args.repeat, partial(case, services, name, sender,
                                                 {"to_group": group_id}, args.messages,
                                                 args.concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_send", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200, help="sends per run")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cassandra", help="HOST:PORT: run on Redis + Cassandra instead")
    parser.add_argument("--redis-url", help="with --cassandra (default: a Redis of its own)")
    args = parser.parse_args()
    print(load_average())
    with contextlib.ExitStack() as servers, tempfile.TemporaryDirectory() as tmp:
        redis_url = args.redis_url
        if args.cassandra and not redis_url:  # the push stream fills up: keep it apart
            from tests.servers.redis_server import RedisServer

            redis_url = servers.enter_context(RedisServer()).url
        settings = settings_for(args, Path(tmp), redis_url)
        try:
            asyncio.run(run_cases(settings, args))
        finally:
            if settings.backend == "production":
                asyncio.run(drop_keyspace(settings))
    print(load_average())


if __name__ == "__main__":
    main()
