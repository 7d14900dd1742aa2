"""A node admits new WebSockets at its own pace (``MESSENGER_UPGRADES_PER_NODE_*``), all
clients together, over a real server: a storm of upgrades gets the burst in, the rest 503
``overloaded`` with a ``Retry-After`` that books each a turn, and clients that wait what they
are told all get in, at the node's rate, without another storm."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from tests.api.server import Account, MessengerProcess, new_account
from tests.api.wsclient import open_ws

BURST, RATE = 5, 4.0
STORM = 25


@dataclass
class Attempts:
    """One client's upgrade attempts: the ``Retry-After`` of each refusal, then its socket."""

    retry_afters: list[int] = field(default_factory=list)
    admitted_at: float | None = None
    ws: ClientConnection | None = None


async def test_a_storm_of_upgrades_is_admitted_at_the_node_rate(tmp_path: Path) -> None:
    node = MessengerProcess(tmp_path / "data", {
        "MESSENGER_UPGRADES_PER_NODE_BURST": str(BURST),
        "MESSENGER_UPGRADES_PER_NODE_RATE_PER_S": str(RATE)})
    node.start()
    clients = [Attempts() for _ in range(STORM)]
    try:
        with node.client() as client:
            account = new_account(client)
        started = time.monotonic()
        async with asyncio.timeout(STORM / RATE + 15):
            await asyncio.gather(*(until_admitted(node, account, c) for c in clients))
    finally:
        for c in clients:
            if c.ws is not None:
                await c.ws.close()
        node.stop()

    first_round = [c for c in clients if not c.retry_afters]
    assert BURST <= len(first_round) <= BURST + 1  # the burst, and what refilled meanwhile
    turns = Counter(c.retry_afters[0] for c in clients if c.retry_afters)
    assert max(turns.values()) <= RATE  # sent back `rate` per second, not all at once
    assert max(turns) >= (STORM - BURST - 1) / RATE
    refusals = sum(len(c.retry_afters) for c in clients)
    assert refusals < 2 * (STORM - len(first_round))  # mostly in on their first return
    last = max(c.admitted_at for c in clients if c.admitted_at is not None) - started
    assert last >= (STORM - BURST - 1) / RATE - 1  # at the node's pace


async def until_admitted(node: MessengerProcess, account: Account, client: Attempts) -> None:
    """Upgrade; after a 503, wait its ``Retry-After`` and try again."""
    while True:
        try:
            client.ws = await open_ws(node.ws_url, account)
        except InvalidStatus as refused:
            response = refused.response
            assert response.status_code == 503
            assert json.loads(bytes(response.body or b""))["error"]["code"] == "overloaded"
            client.retry_afters.append(int(response.headers["Retry-After"]))
            await asyncio.sleep(client.retry_afters[-1])
            continue
        client.admitted_at = time.monotonic()
        return
