"""One socket's send pipeline over a ``send_many`` of our own: order, batching, answers,
back-pressure and closing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from gateway.sends import SendOutcome, SendPipeline
from inbox.core.errors import NotFound
from inbox.core.models import Caller, SendReceipt
from inbox.messages.service import SendRequest

ALICE = Caller(1, 11)


class Store:
    """``send_many`` that records its batches and holds each until ``release``d."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def send_many(self, caller: Caller, requests: Sequence[SendRequest]
                        ) -> list[SendOutcome]:
        self.batches.append([r.client_msg_id for r in requests])
        self.started.set()
        await self.gate.wait()
        out: list[SendOutcome] = []
        for r in requests:
            if r.body == "bad":
                out.append(NotFound("no user 9"))
            else:
                n = int(r.client_msg_id[1:])
                out.append((SendReceipt(100 + n, 200 + n, "d:1:2", 0), False))
        return out


class Replies(list[dict[str, Any]]):
    """The frames a pipeline answered with; ``until(n)`` waits for the n-th."""

    def __init__(self) -> None:
        super().__init__()
        self._grew = asyncio.Event()

    def __call__(self, frame: dict[str, Any]) -> None:
        self.append(frame)
        self._grew.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(2):
            while len(self) < count:
                self._grew.clear()
                await self._grew.wait()


def request(n: int, body: str = "hi") -> SendRequest:
    return SendRequest(body, f"k{n}", to_user=2)


async def test_sends_queued_meanwhile_go_as_one_batch_in_order_and_are_answered_in_order(
) -> None:
    store, replies = Store(), Replies()
    pipeline = SendPipeline(ALICE, store.send_many, replies)
    await pipeline.submit(request(0), "r0")  # returns at once: the store is still held
    await store.started.wait()
    for n in (1, 2, 3):
        await pipeline.submit(request(n, "bad" if n == 2 else "hi"), f"r{n}")
    store.gate.set()
    await replies.until(4)
    assert store.batches == [["k0"], ["k1", "k2", "k3"]]
    assert [(r["op"], r["ref"]) for r in replies] == [
        ("sent", "r0"), ("sent", "r1"), ("error", "r2"), ("sent", "r3")]
    assert replies[0] == {"op": "sent", "client_msg_id": "k0", "msg_id": "100", "id": "200",
                          "conversation_id": "d:1:2", "created_at": replies[0]["created_at"],
                          "ref": "r0"}
    assert replies[2]["code"] == "not_found"
    await pipeline.close()


async def test_a_full_pipeline_holds_the_reader_until_a_send_is_answered() -> None:
    store, replies = Store(), Replies()
    pipeline = SendPipeline(ALICE, store.send_many, replies, max_pending=2)
    await pipeline.submit(request(0), None)
    await pipeline.submit(request(1), None)
    third = asyncio.ensure_future(pipeline.submit(request(2), None))
    await asyncio.sleep(0.05)
    assert not third.done()  # the socket reads no further frame meanwhile
    store.gate.set()
    async with asyncio.timeout(2):
        await third
    await pipeline.close()


async def test_close_lets_the_batch_being_stored_finish_and_drops_the_queued_ones() -> None:
    store, replies = Store(), Replies()
    pipeline = SendPipeline(ALICE, store.send_many, replies)
    await pipeline.submit(request(0), "r0")
    await store.started.wait()
    await pipeline.submit(request(1), "r1")  # queued behind the batch being stored
    closing = asyncio.ensure_future(pipeline.close(flush_s=2))
    await asyncio.sleep(0.05)
    assert not closing.done()  # waits for k0, which may be stored already
    store.gate.set()
    async with asyncio.timeout(2):
        await closing
    assert [r["ref"] for r in replies] == ["r0"] and store.batches == [["k0"]]


async def test_a_store_that_breaks_costs_its_sends_an_error_not_the_pipeline() -> None:
    calls: list[int] = []
    replies = Replies()

    async def broken(caller: Caller, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        calls.append(len(requests))
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return [(SendReceipt(1, 1, "d:1:2", 0), False)] * len(requests)

    pipeline = SendPipeline(ALICE, broken, replies)
    await pipeline.submit(request(0), "r0")
    await replies.until(1)
    await pipeline.submit(request(1), "r1")
    await replies.until(2)
    assert [(r["op"], r.get("code")) for r in replies] == [("error", "internal"),
                                                          ("sent", None)]
    await pipeline.close()


async def test_settle_waits_for_every_send_submitted_to_be_answered() -> None:
    """A drain answers what the client sent before it closes: the batch being stored and
    the sends queued behind it."""
    store, replies = Store(), Replies()
    pipeline = SendPipeline(ALICE, store.send_many, replies)
    assert await pipeline.settle(0.01)  # nothing submitted: settled at once
    await pipeline.submit(request(0), "r0")
    await store.started.wait()
    await pipeline.submit(request(1), "r1")
    assert not await pipeline.settle(0.05)  # the store holds them: not settled in time
    settling = asyncio.ensure_future(pipeline.settle(2))
    await asyncio.sleep(0.05)
    assert not settling.done()
    store.gate.set()
    assert await settling
    assert [r["ref"] for r in replies] == ["r0", "r1"]
    await pipeline.close()
