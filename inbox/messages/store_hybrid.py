"""The production ``InboxStore``: Redis sequences and serves hot entries, Cassandra keeps them.

Invariant 1 (positions follow *visibility* order across many writer processes) comes from
splitting an append in three steps and letting readers see only the committed prefix:

1. **reserve** (one Lua call, ``log_redis_lua.RESERVE``): each inbox gets ``pos = max(head + 1,
   msg_id, min_id(now - skew))``, the entry goes into its stream at id ``<pos>-0`` and ``pos``
   is marked pending until ``deadline = Redis TIME + pending_ttl``.
2. **write** every row to Cassandra ``USING TIMESTAMP deadline_us`` (inbox rows, history,
   idempotency receipt), concurrently.
3. **commit** (Lua): if every mark is present and the deadline has not passed, remove them.

Readers see positions up to the *watermark*: ``min(pending) - 1``, or ``head`` when nothing is
pending. A reader that meets an *expired* mark **fences** it: it deletes the entry's rows in
Cassandra ``USING TIMESTAMP deadline_us + 1`` (a write landing later loses by timestamp), then
drops the mark and the stream entry. A writer whose Cassandra write failed, or whose commit
came too late, fences the same way and raises ``Unavailable`` (503, nothing visible). A dead
writer thus stalls its inboxes' readers for at most ``pending_ttl``.

``read`` serves from the stream when it holds everything after the cursor (``after >= floor``;
``floor`` rises when ``MAXLEN ~`` trims), else from Cassandra up to the same watermark, so a
page may come from Cassandra and the next from Redis without a gap.

**Redis loses its data** (restart with empty memory): the inbox's sequencer hash is missing,
and the first reserve or read **seeds** it. An inbox never seeded before (no
``inbox_heads.first_bucket`` row; the seed writes it before the sequencer exists) starts at 0.
Otherwise ``head = max(Cassandra max, min_id(now + pending_ttl + skew))`` and the inbox is
*recovering* until ``now + pending_ttl + skew``: writes made before the loss either landed by
their deadline or will be fenced by their writer, so meanwhile reserves wait and readers apply
the time-safe rule below. A writer whose commit finds every inbox in a new era (``lost``)
reports success if its write finished before its deadline: its rows are then below the new
head and visible in order; otherwise it fences.

**Redis down**: sends raise ``Unavailable``. Two sequencers (say, a fallback in Cassandra
during a partition) could hand out interleaved positions and break invariant 1, so there is
exactly one. Reads fall back to Cassandra with the *time-safe* watermark
``min_id(now - pending_ttl - skew) - 1``: every position is at least ``min_id(reserve time -
skew)`` and every write lands before ``reserve time + pending_ttl`` or is fenced, so nothing
can still appear below that mark. A commit whose reply is lost with Redis is fenced (an entry
seen by a reader in that instant could vanish: a known, narrow window).

**Idempotency** (invariant 3): the reserve claims ``idem:{u:sender}:<client_msg_id>`` in the
same atomic call, for the reservation's pending TTL plus a margin (racers poll for the
receipt up to a second, then answer 503 with ``Retry-After`` = when the claim expires; an
expired claim, whose attempt can no longer commit, is taken over by the next reserve); while
reserving, Cassandra's ``sends_by_client_id`` is read (a retry after the Redis receipt
expired, after a Redis loss, or after taking over a dead attempt's claim), and a receipt found
there answers the retry only if its attempt committed; commit stores the receipt in Redis
atomically with clearing the marks, and only while the key holds its own claim (no separate
release); Cassandra has it from the write.

**The decisions** live in ``append_protocol`` (a sans-I/O state machine, unit-tested without
any server); this module performs its actions. ``append_many`` reserves a list of messages in
one Redis call, in order; concurrent appends share reserve calls and commit pipelines
(``coalesce``), so a busy node makes a few round trips for many messages.

Redis Cluster: keys are slot-tagged per inbox, but a fan-out script spans slots; on Cluster the
scripts must run per slot, and reserve/commit are then atomic per slot only (not implemented).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import Any

from idgen.clock import SYSTEM_CLOCK, Clock
from idgen.snowflake import min_id_for_ms
from inbox.core.errors import DomainError, Unavailable
from inbox.core.models import (
    AppendBatch,
    Appended,
    Entry,
    EntryDraft,
    EntryKind,
    InboxPage,
    Message,
    SendReceipt,
)
from inbox.messages.append_protocol import (
    Action,
    AppendProtocol,
    Commit,
    Finish,
    Lookup,
    Settle,
    Sleep,
    Timing,
    Write,
    earlier_attempt,
    unreserved,
)
from inbox.messages.durable_cassandra import CassandraInbox, DurableAppend
from inbox.messages.log_redis import (
    Busy,
    Claim,
    LogUnavailable,
    NeedsSeed,
    Recovering,
    RedisInboxLog,
    Replay,
    Reservation,
    ReserveRequest,
    draft_from_json,
    entry_fields,
    idem_key,
    receipt_json,
    stored_entry,
)
from inbox.storage.cassandra_schema import BUCKET_MS
from inbox.storage.coalesce import Coalescer

_PLACEHOLDER = EntryDraft(EntryKind.MESSAGE, 0, "", 0, 0, 0)
_MAX_POSITION = 2**63 - 2
Reserved = list[Reservation | Replay | Busy]


class HybridInboxStore:
    """``InboxStore`` (``inbox.messages.port``) over ``RedisInboxLog`` + ``CassandraInbox``."""

    def __init__(
        self,
        log: RedisInboxLog,
        durable: CassandraInbox,
        *,
        pending_ttl_ms: int = 5000,
        receipt_ttl_ms: int = 3_600_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Compose the two halves; ``clock`` times appends (its wall time only serves
        reads while Redis is down: otherwise Redis' own clock decides)."""
        self.log = log
        self.durable = durable
        self.timing = Timing(pending_ttl_ms, receipt_ttl_ms)
        self.pending_ttl_ms = pending_ttl_ms
        self._clock = clock
        self._reserves: Coalescer[Sequence[ReserveRequest], Reserved | NeedsSeed | Recovering]
        self._reserves = Coalescer(self._reserve_together)

    # ---- append -------------------------------------------------------------------------

    async def append(self, batch: AppendBatch) -> Appended:
        """Append atomically and durably (see the module docstring for how)."""
        [result] = await self.append_many([batch])
        if isinstance(result, DomainError):
            raise result
        return result

    async def append_many(self, batches: Sequence[AppendBatch]
                          ) -> list[Appended | DomainError]:
        """Append each batch atomically and durably, reserving them in list order."""
        if any(not batch.user_ids for batch in batches):
            raise ValueError("an append needs at least one inbox")
        started = self._clock.monotonic()
        protocols = [AppendProtocol(b, _claim(b), self.timing, started) for b in batches]
        starts = [p.start() for p in protocols]
        lookups = [self._lookup(p) if step.lookup else None
                   for p, step in zip(protocols, starts, strict=True)]
        try:
            reserved = await self._reserve(protocols, started)
        except Unavailable as exc:
            await asyncio.gather(*(_cancelled(task) for task in lookups if task is not None))
            return list(await asyncio.gather(
                *(self._finish(p, p.failed(exc)) for p in protocols)))
        now = self._clock.monotonic()
        return list(await asyncio.gather(*(
            self._run(p, p.reserved(outcome, now), lookup)
            for p, outcome, lookup in zip(protocols, reserved, lookups, strict=True))))

    async def _run(self, p: AppendProtocol, action: Action,
                   lookup: asyncio.Task[SendReceipt | None] | None) -> Appended | DomainError:
        """Perform ``p``'s actions until it finishes."""
        try:
            while not isinstance(action, Finish):
                try:
                    action = await self._perform(p, action, lookup)
                except Unavailable as exc:
                    action = p.failed(exc)
        finally:
            if lookup is not None and not lookup.done():
                await _cancelled(lookup)
        return await self._finish(p, action)

    async def _perform(self, p: AppendProtocol, action: Action,
                       lookup: asyncio.Task[SendReceipt | None] | None) -> Action:
        """One step of ``p``; raises ``Unavailable`` when its store cannot answer."""
        if isinstance(action, Sleep):
            await self._clock.sleep(action.seconds)
            [outcome] = await self._reserve([p], self._clock.monotonic())
            return p.reserved(outcome, self._clock.monotonic())
        if isinstance(action, Lookup):
            task = self._lookup(p) if action.fresh or lookup is None else lookup
            return p.looked_up(await task, self._clock.monotonic())
        if isinstance(action, Settle):
            owner = p.batch.receipt_for
            assert owner is not None and p.batch.idempotency_key is not None  # noqa: S101
            settled = await self._settled(action.receipt, p.batch.idempotency_key, owner)
            return p.settled(settled, self._clock.monotonic())
        if isinstance(action, Write):
            await self.durable.write(action.append, action.receipt, action.ts_us)
            return p.written(self._clock.monotonic())
        if isinstance(action, Commit):
            cache = None
            if p.claim is not None and action.receipt is not None:
                cache = (p.claim.key, receipt_json(action.receipt), self.timing.receipt_ttl_ms)
            return p.committed(await self.log.commit(action.reservation, cache, p.claim))
        raise TypeError(f"unknown action {action!r}")  # Reserve only comes from start()

    def _lookup(self, p: AppendProtocol) -> asyncio.Task[SendReceipt | None]:
        assert p.batch.idempotency_key is not None  # noqa: S101
        return asyncio.ensure_future(self.durable.get_receipt(*p.batch.idempotency_key))

    async def _finish(self, p: AppendProtocol, finish: Finish) -> Appended | DomainError:
        """Clean up as ``finish`` says, then its result."""
        if finish.fence is not None:
            await self._fence(*finish.fence)
        elif finish.abort is not None:
            await self._quietly(self.log.abort(finish.abort.positions,
                                               finish.abort.deadline_ms))
        if finish.release is not None:
            await self._quietly(self.log.release_claim(finish.release))
        if finish.cache is not None and p.claim is not None:
            await self._quietly(self.log.cache_receipt(p.claim.key, finish.cache,
                                                       self.timing.receipt_ttl_ms))
        return finish.result

    async def _reserve(self, protocols: Sequence[AppendProtocol], started: float) -> Reserved:
        """Reserve every protocol's message in order (one call shared with concurrent
        appends), seeding missing sequencers and waiting out recoveries."""
        requests = [_request(p) for p in protocols]
        while True:
            now = self._clock.monotonic()
            for p in protocols:
                p.sent(now)
            outcome = await self._reserves.submit(requests)
            if isinstance(outcome, list):
                return outcome
            step = unreserved(outcome, started, self._clock.monotonic(), self.timing)
            if isinstance(step, Unavailable):
                raise step
            if isinstance(step, Sleep):
                await self._clock.sleep(step.seconds)
            else:
                await asyncio.gather(*(self._seed(uid) for uid in step.user_ids))

    async def _reserve_together(self, calls: Sequence[Sequence[ReserveRequest]]
                                ) -> list[Reserved | NeedsSeed | Recovering]:
        """Concurrent appends' reserves as one Redis call; each gets its own slice back
        (or the whole call's ``NeedsSeed``/``Recovering``: nothing was reserved)."""
        flat = [request for call in calls for request in call]
        found = await self.log.reserve_all(flat, self.pending_ttl_ms,
                                           self.timing.claim_ttl_ms)
        if isinstance(found, NeedsSeed | Recovering):
            return [found] * len(calls)
        out: list[Reserved | NeedsSeed | Recovering] = []
        start = 0
        for call in calls:
            out.append(found[start:start + len(call)])
            start += len(call)
        return out

    async def _settled(self, earlier: SendReceipt, key: tuple[int, str], owner: int
                       ) -> SendReceipt | None:
        """``earlier`` (a durable receipt) if its attempt committed; None once it is fenced
        (``append_protocol.earlier_attempt`` says why)."""
        deadline = await self.log.pending_deadline(owner, earlier.id)
        now_ms = await self.log.time_ms()
        verdict = earlier_attempt(deadline, now_ms)
        if verdict == "ended":
            return await self.durable.get_receipt(*key)
        assert deadline is not None  # noqa: S101
        if verdict == "running":  # past its deadline, it is abandoned: a retry fences it
            raise Unavailable("an earlier attempt of this request is still being stored; "
                              "retry", retry_after_s=(deadline + 1 - now_ms) / 1000)
        if not await self._fence_expired(owner, [(earlier.id, deadline)]):
            raise Unavailable("Cassandra refused to fence an abandoned attempt; retry")
        return None

    async def _seed(self, user_id: int) -> None:
        """Create a missing sequencer (see "Redis loses its data" above)."""
        started = await self.log.time_ms()
        skew = self.log.skew_ms
        first = await self.durable.first_bucket(user_id)
        if first is None:
            await self.durable.set_first_bucket(user_id, (started - skew) // BUCKET_MS)
            head = last = floor = recover = 0
        else:
            last = await self.durable.max_position(user_id, started)
            recover = started + self.pending_ttl_ms + skew
            head = floor = max(last, min_id_for_ms(recover))
        await self.log.seed(user_id, head, last, floor, recover, started,
                            self.pending_ttl_ms, secrets.token_hex(8))  # fmt: skip

    async def _fence(self, append: DurableAppend, res: Reservation) -> None:
        """Delete the append's rows so that even a late write loses, then drop the marks.

        If Cassandra cannot take the deletes, the marks stay: they expire, and readers fence
        them once Cassandra is back (until then readers stop just below them)."""
        try:
            await self.durable.fence(append, res.deadline_ms * 1000 + 1)
        except Unavailable:
            return
        await self._quietly(self.log.abort(res.positions, res.deadline_ms))

    @staticmethod
    async def _quietly(work: Any) -> None:
        try:
            await work
        except LogUnavailable:
            pass  # marks left behind expire and get fenced by readers; claims expire

    # ---- reads ----------------------------------------------------------------------------

    def _time_safe(self, now_ms: int) -> int:
        return min_id_for_ms(now_ms - self.pending_ttl_ms - self.log.skew_ms) - 1

    async def read(self, user_id: int, after: int, limit: int) -> InboxPage:
        """Entries after ``after`` up to the committed watermark, from Redis or Cassandra."""
        try:
            return await self._read_hot(user_id, after, limit)
        except LogUnavailable:
            upto = self._time_safe(self._clock.now_ms())
            entries = await self.durable.read(user_id, after, upto, limit + 1)
            return InboxPage(entries[:limit], len(entries) > limit)

    async def _watermark(self, user_id: int, after: int, count: int) -> tuple[int, Any]:
        """The committed watermark and the state it came from, fencing expired marks."""
        for _ in range(8):
            state = await self.log.state(user_id, after, count)
            if state.head is None:
                await self._seed(user_id)
                continue
            expired = [(p, d) for p, d in state.pending if d < state.now_ms]
            if expired and await self._fence_expired(user_id, expired):
                continue
            watermark = state.pending[0][0] - 1 if state.pending else state.head
            if state.now_ms < state.recover_ms:
                watermark = min(watermark, self._time_safe(state.now_ms))
            return watermark, state
        raise Unavailable("inbox state keeps changing; retry")

    async def _read_hot(self, user_id: int, after: int, limit: int) -> InboxPage:
        watermark, state = await self._watermark(user_id, after, limit + 1)
        if after >= state.floor:
            visible = [(p, f) for p, f in state.entries if p <= watermark]
            page = [Entry(p, draft_from_json(f["e"])) for p, f in visible[:limit]]
            return InboxPage(page, len(visible) > limit)
        entries = await self.durable.read(user_id, after, watermark, limit + 1)
        return InboxPage(entries[:limit], len(entries) > limit)

    async def _fence_expired(self, user_id: int, expired: list[tuple[int, int]]) -> bool:
        """Fence abandoned reservations of this inbox; False if Cassandra refused."""
        for pos, deadline in expired:
            fields = await self.log.entry(user_id, pos)
            append = DurableAppend(_PLACEHOLDER, {user_id: pos})
            if fields is not None:
                found = stored_entry(fields)
                append = DurableAppend(found.draft, {user_id: pos}, found.message, found.key)
            try:
                await self.durable.fence(append, deadline * 1000 + 1)
            except Unavailable:
                return False
            await self.log.abort({user_id: pos}, deadline)
        return True

    async def head(self, user_id: int) -> int:
        """The position of the inbox's latest visible entry, 0 when there is none."""
        try:
            watermark, state = await self._watermark(user_id, _MAX_POSITION, 1)
            last = await self.log.last_position(user_id, watermark)
            if last is not None:
                return last
            if state.floor == 0:
                return 0
        except LogUnavailable:
            watermark = self._time_safe(self._clock.now_ms())
        return await self.durable.max_position(user_id, self._clock.now_ms(), upto=watermark)

    async def history(self, conversation_id: str, before: int | None, limit: int) -> list[Message]:
        """Conversation history, newest first (from Cassandra)."""
        return await self.durable.history(conversation_id, before, limit, self._clock.now_ms())

    async def receipt(self, key: tuple[int, str]) -> SendReceipt | None:
        """Redis' receipt (always of a committed attempt), else Cassandra's if its attempt
        committed (``_settled``: 503 while it may still commit)."""
        cached = await self.log.receipt(idem_key(*key))
        if cached is not None:
            return cached
        earlier = await self.durable.get_receipt(*key)
        if earlier is None:
            return None
        return await self._settled(earlier, key, key[0])

    async def get_message(self, msg_id: int) -> Message | None:
        """One message by id (from Cassandra)."""
        return await self.durable.get_message(msg_id)

    async def ping(self) -> None:
        """``Unavailable`` naming the store that does not answer."""
        await self.log.ping()
        await self.durable.ping()

    async def close(self) -> None:
        """Nothing of its own: the composition root closes the Redis client and CqlSession."""



def _claim(batch: AppendBatch) -> Claim | None:
    """The idempotency claim an append takes while reserving (a fresh token per attempt)."""
    if batch.idempotency_key is None:
        return None
    return Claim(idem_key(*batch.idempotency_key), "p:" + secrets.token_hex(8))


def _request(p: AppendProtocol) -> ReserveRequest:
    batch = p.batch
    return ReserveRequest(tuple(dict.fromkeys(batch.user_ids)), batch.draft.msg_id,
                          entry_fields(batch.draft, batch.message, batch.idempotency_key),
                          p.claim)


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
