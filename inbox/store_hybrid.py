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

**Idempotency** (invariant 3): ``idem:{u:sender}:<client_msg_id>`` is claimed with ``SET NX``
(racers poll for the receipt); while reserving, Cassandra's ``sends_by_client_id`` is checked
(a retry after the Redis receipt expired, or after a Redis loss), and a receipt found there
answers the retry only if its attempt committed (``_settled``); commit stores the receipt
in Redis atomically with clearing the marks; Cassandra has it from the write.

Redis Cluster: keys are slot-tagged per inbox, but a fan-out script spans slots; on Cluster the
scripts must run per slot, and reserve/commit are then atomic per slot only (not implemented).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from idgen.snowflake import min_id_for_ms
from inbox.cassandra_schema import BUCKET_MS
from inbox.errors import Unavailable, dependency_failed
from inbox.log_redis import (
    NeedsSeed,
    RedisInboxLog,
    Reservation,
    draft_from_json,
    draft_to_json,
    idem_key,
    text,
)
from inbox.models import (
    AppendBatch,
    Appended,
    Entry,
    EntryDraft,
    EntryKind,
    InboxPage,
    Message,
    SendReceipt,
)
from inbox.store_cassandra import CassandraInbox, DurableAppend

_REDIS_ERRORS = (RedisError, OSError)
_NO_MESSAGE: Any = None
_PLACEHOLDER = EntryDraft(EntryKind.MESSAGE, 0, "", 0, 0, 0)
_MAX_POSITION = 2**63 - 2


def _redis_down(exc: BaseException) -> Unavailable:
    return dependency_failed("Redis", "inbox log", exc)


class HybridInboxStore:
    """``inbox.store.InboxStore`` over ``RedisInboxLog`` + ``CassandraInbox`` (see above)."""

    def __init__(
        self,
        log: RedisInboxLog,
        durable: CassandraInbox,
        *,
        pending_ttl_ms: int = 5000,
        receipt_ttl_ms: int = 3_600_000,
        clock_ms: Any = None,
    ) -> None:
        """Compose the two halves; ``clock_ms`` (Unix ms) is used only when Redis is down."""
        self.log = log
        self.durable = durable
        self.pending_ttl_ms = pending_ttl_ms
        self.receipt_ttl_ms = receipt_ttl_ms
        self.claim_ttl_ms = 4 * pending_ttl_ms
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    # ---- append -------------------------------------------------------------------------

    async def append(self, batch: AppendBatch) -> Appended:
        """Append atomically and durably (see the module docstring for how)."""
        user_ids = tuple(dict.fromkeys(batch.user_ids))
        if not user_ids:
            raise ValueError("an append needs at least one inbox")
        claim: tuple[str, str] | None = None
        if batch.idempotency_key is not None:
            claimed = await self._claim(batch.idempotency_key)
            if isinstance(claimed, SendReceipt):
                return Appended(receipt=claimed, replayed=True)
            claim = claimed
        started = time.monotonic()
        try:
            return await self._append_claimed(batch, user_ids, started)
        finally:
            if claim is not None:
                await self._release(*claim)

    async def _append_claimed(
        self, batch: AppendBatch, user_ids: tuple[int, ...], started: float
    ) -> Appended:
        fields = {"e": draft_to_json(batch.draft)}
        if batch.message is not None:
            fields["m"] = json.dumps([batch.message.msg_id, batch.message.conversation_id])
        if batch.idempotency_key is not None:
            fields["k"] = json.dumps(list(batch.idempotency_key))
        # The durable receipt (found when Redis forgot an earlier attempt) is looked up while
        # the reservation is made: both come after the claim, so neither waits for the other.
        lookup = None
        if batch.idempotency_key is not None:
            lookup = asyncio.ensure_future(self.durable.get_receipt(*batch.idempotency_key))
        sent_at = time.monotonic()
        try:
            res = await self._reserve(user_ids, batch.draft.msg_id, fields)
        except BaseException:
            if lookup is not None:
                lookup.cancel()
                await asyncio.gather(lookup, return_exceptions=True)
            raise
        local_deadline = sent_at + self.pending_ttl_ms / 1000
        append = DurableAppend(batch.draft, res.positions, batch.message, batch.idempotency_key)
        if lookup is not None:
            earlier = await self._guarded(lookup, res)
            if earlier is not None and batch.receipt_for is not None:
                earlier = await self._guarded(
                    self._settled(earlier, batch.idempotency_key, batch.receipt_for), res)
            if earlier is not None:
                await self._abort_reserved(res)
                return Appended(receipt=earlier, replayed=True)
            if time.monotonic() - started > (self.claim_ttl_ms - self.pending_ttl_ms) / 1000:
                await self._abort_reserved(res)
                raise Unavailable("send took too long to start; retry")
        receipt = self._receipt(batch, res)
        await self._guarded(self.durable.write(append, receipt, res.deadline_ms * 1000), res,
                            append)  # fmt: skip
        written_at = time.monotonic()
        cache = None
        if batch.idempotency_key is not None and receipt is not None:
            cache = (idem_key(*batch.idempotency_key), _receipt_json(receipt), self.receipt_ttl_ms)
        try:
            outcome = await self.log.commit(res, cache)
        except _REDIS_ERRORS as exc:
            await self._fence(append, res)
            raise _redis_down(exc) from exc
        if outcome == "lost" and written_at < local_deadline:
            if cache is not None:
                await self._quietly(self.log.redis.set(cache[0], cache[1], px=cache[2]))
        elif outcome != "ok":
            await self._fence(append, res)
            raise Unavailable(f"send did not commit in time ({outcome}); retry")
        return Appended(receipt=receipt, positions=dict(res.positions), previous=res.previous)

    async def _settled(self, earlier: SendReceipt, key: Any, owner: int) -> SendReceipt | None:
        """``earlier`` (a durable receipt) if its attempt committed; None once it is fenced.

        An attempt writes its receipt before it commits, and one that never commits (its node
        died, or its write half failed and so did its fence) leaves a pending mark at the
        receipt's position in ``owner``'s inbox. Answering a retry from that receipt would
        acknowledge a message that readers are about to fence away; so a mark still running
        is a 503 (retry), an expired one is fenced here and the retry goes on as the first
        attempt. Without a mark the attempt committed, or a reader fenced it meanwhile (a
        fence deletes the receipt before it drops the mark): reading the receipt again tells.
        """
        try:
            deadline = await self.log.pending_deadline(owner, earlier.id)
            if deadline is None:
                return await self.durable.get_receipt(*key)
            if deadline >= await self.log.time_ms():
                raise Unavailable("an earlier attempt of this request is still being stored; "
                                  "retry")
            if not await self._fence_expired(owner, [(earlier.id, deadline)]):
                raise Unavailable("Cassandra refused to fence an abandoned attempt; retry")
        except _REDIS_ERRORS as exc:
            raise _redis_down(exc) from exc
        return None

    @staticmethod
    def _receipt(batch: AppendBatch, res: Reservation) -> SendReceipt | None:
        if batch.receipt_for is None:
            return None
        draft = batch.draft
        return SendReceipt(draft.msg_id, res.positions[batch.receipt_for], draft.conversation_id,
                           draft.created_at_ms)  # fmt: skip

    async def _guarded(self, work: Any, res: Reservation, append: DurableAppend | None = None
                       ) -> Any:  # fmt: skip
        """Await Cassandra ``work``; on failure fence (or just abort the reservation)."""
        try:
            return await work
        except Unavailable:
            if append is None:
                await self._abort_reserved(res)
            else:
                await self._fence(append, res)
            raise

    async def _reserve(self, user_ids: Sequence[int], msg_id: int, fields: dict[str, str]
                       ) -> Reservation:  # fmt: skip
        """Reserve, seeding missing sequencers and waiting out a recovery window."""
        give_up = time.monotonic() + 2 * self.pending_ttl_ms / 1000 + 1
        while True:
            try:
                res = await self.log.reserve(user_ids, msg_id, self.pending_ttl_ms, fields)
            except _REDIS_ERRORS as exc:
                raise _redis_down(exc) from exc
            if isinstance(res, Reservation):
                return res
            if time.monotonic() > give_up:
                raise Unavailable("inbox sequencer is recovering; retry")
            if isinstance(res, NeedsSeed):
                await asyncio.gather(*(self._seed(uid) for uid in res.user_ids))
            else:
                await asyncio.sleep(min(res.wait_ms, 200) / 1000)

    async def _seed(self, user_id: int) -> None:
        """Create a missing sequencer (see "Redis loses its data" above)."""
        try:
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
        except _REDIS_ERRORS as exc:
            raise _redis_down(exc) from exc

    async def _fence(self, append: DurableAppend, res: Reservation) -> None:
        """Delete the append's rows so that even a late write loses, then drop the marks.

        If Cassandra cannot take the deletes, the marks stay: they expire, and readers fence
        them once Cassandra is back (until then readers stop just below them)."""
        try:
            await self.durable.fence(append, res.deadline_ms * 1000 + 1)
        except Unavailable:
            return
        await self._abort_reserved(res)

    async def _abort_reserved(self, res: Reservation) -> None:
        await self._quietly(self.log.abort(res.positions, res.deadline_ms))

    @staticmethod
    async def _quietly(work: Any) -> None:
        try:
            await work
        except _REDIS_ERRORS:
            pass  # marks left behind expire and get fenced by readers

    # ---- idempotency claims ---------------------------------------------------------------

    async def _claim(self, key: tuple[int, str]) -> SendReceipt | tuple[str, str]:
        """Claim the key (returns it and our token) or return the stored receipt."""
        rkey, token = idem_key(*key), "p:" + secrets.token_hex(8)
        give_up = time.monotonic() + self.claim_ttl_ms / 1000
        try:
            while True:
                if await self.log.redis.set(rkey, token, nx=True, px=self.claim_ttl_ms):
                    return rkey, token
                value = await self.log.redis.get(rkey)
                if (cached := _cached_receipt(value)) is not None:
                    return cached
                if value is not None and time.monotonic() > give_up:
                    raise Unavailable("the same client_msg_id is being sent; retry")
                if value is not None:
                    await asyncio.sleep(0.02)
        except _REDIS_ERRORS as exc:
            raise _redis_down(exc) from exc

    async def _release(self, rkey: str, token: str) -> None:
        """Drop our claim unless it was replaced by a receipt (compare-and-delete)."""
        release = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"
        await self._quietly(self.log.redis.eval(release, 1, rkey, token))

    # ---- reads ----------------------------------------------------------------------------

    def _time_safe(self, now_ms: int) -> int:
        return min_id_for_ms(now_ms - self.pending_ttl_ms - self.log.skew_ms) - 1

    async def read(self, user_id: int, after: int, limit: int) -> InboxPage:
        """Entries after ``after`` up to the committed watermark, from Redis or Cassandra."""
        try:
            return await self._read_hot(user_id, after, limit)
        except _REDIS_ERRORS:
            upto = self._time_safe(self._clock_ms())
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
                draft = draft_from_json(fields["e"])
                message = _NO_MESSAGE
                if "m" in fields:
                    msg_id, cid = json.loads(fields["m"])
                    message = Message(msg_id, cid, draft.sender_id, draft.sender_device_id, "", 0)
                key = tuple(json.loads(fields["k"])) if "k" in fields else None
                append = DurableAppend(draft, {user_id: pos}, message, key)
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
            last = await self.log.redis.xrevrange(
                f"inbox:{{u:{user_id}}}", f"{watermark}-0", "-", count=1
            )
            if last:
                return int(text(last[0][0])[:-2])
            if state.floor == 0:
                return 0
        except _REDIS_ERRORS:
            watermark = self._time_safe(self._clock_ms())
        return await self.durable.max_position(user_id, self._clock_ms(), upto=watermark)

    async def history(self, conversation_id: str, before: int | None, limit: int) -> list[Message]:
        """Conversation history, newest first (from Cassandra)."""
        return await self.durable.history(conversation_id, before, limit, self._clock_ms())

    async def receipt(self, key: tuple[int, str]) -> SendReceipt | None:
        """Redis' receipt (always of a committed attempt), else Cassandra's if its attempt
        committed (``_settled``: 503 while it may still commit)."""
        try:
            value = await self.log.redis.get(idem_key(*key))
        except _REDIS_ERRORS as exc:
            raise _redis_down(exc) from exc
        if (cached := _cached_receipt(value)) is not None:
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
        try:
            await self.log.redis.ping()
        except _REDIS_ERRORS as exc:
            raise _redis_down(exc) from exc
        await self.durable.ping()

    async def close(self) -> None:
        """Nothing of its own: the composition root closes the Redis client and CqlSession."""


def _receipt_json(receipt: SendReceipt) -> str:
    return "r:" + json.dumps(
        [receipt.msg_id, receipt.id, receipt.conversation_id, receipt.created_at_ms]
    )


def _cached_receipt(value: Any) -> SendReceipt | None:
    """The receipt an idempotency key holds in Redis (``_receipt_json``), None for a claim
    (``p:<token>``) or no value."""
    if value is None or not text(value).startswith("r:"):
        return None
    return SendReceipt(*json.loads(text(value)[2:]))
