"""Redis adapter: the hot inbox log and the per-inbox position sequencer (Lua scripts, whose
sources live in ``log_redis_lua``).

Keys carry the hash tag ``{u:<user_id>}`` so everything of one inbox sits in one Cluster slot:
- ``inbox:{u:ID}``: a stream whose entry ids are ``<position>-0`` (a stream id's first part
  is any 64-bit integer, so positions serve as ids; reads are ``XRANGE (<after>-0 +``);
  trimmed with ``MAXLEN ~``.
- ``inbox:meta:{u:ID}``: hash ``head`` (the sequencer: largest position handed out, which is
  also the latest entry's position, for ``Appended.previous``), ``last`` (the latest entry's
  position when a seed set ``head`` above it; dropped by the next reserve), ``floor`` (the stream
  holds every entry above it unless some were removed, see ``READ``), ``recover`` (ms
  until which readers stay time-safe), ``era`` (changes when Redis lost the inbox), and one
  field ``p:<position>`` = deadline ms per reserved, uncommitted position (pending mark).

``RESERVE`` fans entries out to every recipient in **one round trip for any number of
messages** (claiming each one's idempotency key in the same step), and ``COMMIT`` clears a
message's marks in one more (concurrent commits share a pipeline). Per recipient, reserve costs
three commands (HMGET, XADD, one HSET that moves the sequencer and sets the mark) and commit
one HDEL: keeping the marks in the meta hash rather than a zset of their own saves a command
per recipient on each side, which is most of the script's time at 100 recipients (measured: ~6
us of redis-server CPU per recipient for reserve + commit, against ~1.7 us for a bare XADD from
Lua). The fan-out scripts are passed only the meta key of each inbox and derive its stream key:
the same hash tag, so the same slot, which is what Redis Cluster checks. A Lua script may only
touch keys of one slot in Redis Cluster: with one Redis (the tested set-up) a message is one
call; under Cluster the caller must split recipients per slot, which makes reserve and commit
per-slot atomic only (see ``store_hybrid``). Lua numbers are doubles, so positions (up to
2**63) are handled as canonical decimal strings, compared by length and then bytes. Replies and
per-recipient arguments are comma-joined strings: one bulk string to encode or parse instead of
one per recipient, which is where a Python client spends its time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from idgen.snowflake import EPOCH_MS
from inbox.core.attachments import refs_from_list, refs_to_list
from inbox.core.errors import Unavailable
from inbox.core.models import EntryDraft, EntryKind, Message, SendReceipt
from inbox.messages.log_redis_lua import ABORT, COMMIT, READ, RELEASE, RESERVE, SEED
from inbox.storage.coalesce import Coalescer

log = logging.getLogger(__name__)
T = TypeVar("T")


def meta_key(user_id: int) -> str:
    """The inbox's sequencer hash."""
    return f"inbox:meta:{{u:{user_id}}}"


@lru_cache(maxsize=1024)
def _meta_keys(user_ids: tuple[int, ...]) -> tuple[bytes, ...]:
    """The meta keys of a recipient list, encoded: a group's members are the same for each of
    its messages, and building and encoding 100 keys is a good part of a call's client time."""
    return tuple(meta_key(uid).encode() for uid in user_ids)


def stream_key(user_id: int) -> str:
    """The inbox's hot stream."""
    return f"inbox:{{u:{user_id}}}"


def idem_key(sender_id: int, client_msg_id: str) -> str:
    """The idempotency claim/receipt of one send, in the sender's slot."""
    return f"idem:{{u:{sender_id}}}:{client_msg_id}"


def text(value: Any) -> str:
    """A Redis reply as ``str`` (clients may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def draft_to_json(draft: EntryDraft) -> str:
    """The compact JSON form of a draft stored in stream entries."""
    doc: dict[str, Any] = {
        "k": draft.kind.value, "m": draft.msg_id, "c": draft.conversation_id,
        "s": draft.sender_id, "d": draft.sender_device_id, "t": draft.created_at_ms,
    }  # fmt: skip
    for key, value in (("b", draft.body), ("u", draft.up_to_msg_id), ("x", draft.scope),
                       ("g", draft.group)):  # fmt: skip
        if value is not None:
            doc[key] = value
    if draft.attachments:
        doc["a"] = refs_to_list(draft.attachments)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def draft_from_json(raw: str | bytes) -> EntryDraft:
    """Inverse of ``draft_to_json``."""
    doc = json.loads(raw)
    return EntryDraft(
        kind=EntryKind(doc["k"]), msg_id=doc["m"], conversation_id=doc["c"], sender_id=doc["s"],
        sender_device_id=doc["d"], created_at_ms=doc["t"], body=doc.get("b"),
        up_to_msg_id=doc.get("u"), scope=doc.get("x"), group=doc.get("g"),
        attachments=refs_from_list(doc.get("a", ())),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reservation:
    """Positions reserved for one entry: ``previous``/``positions`` by user id."""

    now_ms: int
    deadline_ms: int
    previous: dict[int, int]
    positions: dict[int, int]
    eras: dict[int, str]


@dataclass(frozen=True, slots=True)
class Claim:
    """An idempotency key to claim with ``token`` while reserving (``idem_key``)."""

    key: str
    token: str


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    """One message to reserve: its inboxes, id, stream entry fields and optional claim."""

    user_ids: tuple[int, ...]
    msg_id: int
    fields: Mapping[str, str]
    claim: Claim | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    """The message's idempotency key already holds the receipt of a committed attempt."""

    receipt: SendReceipt


@dataclass(frozen=True, slots=True)
class Busy:
    """Another attempt (or an earlier message of the same call) holds the message's key;
    its claim expires (and the key may be claimed again) in ``wait_ms``."""

    wait_ms: int


@dataclass(frozen=True, slots=True)
class NeedsSeed:
    """Some recipients' sequencers are missing (new inbox, or Redis lost its data)."""

    user_ids: list[int]


@dataclass(frozen=True, slots=True)
class Recovering:
    """An inbox is in its post-loss recovery window; retry after ``wait_ms``."""

    wait_ms: int


@dataclass(frozen=True, slots=True)
class InboxState:
    """One atomic look at an inbox: sequencer, pending positions, stream entries."""

    now_ms: int
    head: int | None
    floor: int
    recover_ms: int
    pending: list[tuple[int, int]]  # (position, deadline ms), ascending
    entries: list[tuple[int, dict[str, str]]]  # stream entries after the cursor


def _reserve_results(requests: Sequence[ReserveRequest], keys: Sequence[int | None], reply: Any
                     ) -> list[Reservation | Replay | Busy] | NeedsSeed | Recovering:
    """Parse a ``RESERVE`` reply; ``keys`` maps each KEYS index to its user (None: a claim)."""
    status = text(reply[0])
    if status == "seed":
        return NeedsSeed(list(dict.fromkeys(
            uid for i in reply[1] if (uid := keys[int(text(i))]) is not None)))
    if status == "wait":
        return Recovering(int(text(reply[1])))
    now_ms, deadline_ms = int(text(reply[1])), int(text(reply[2]))
    out: list[Reservation | Replay | Busy] = []
    for n, request in enumerate(requests):
        kind, *columns = (text(v) for v in reply[3 + 4 * n: 7 + 4 * n])
        if kind == "replay":
            receipt = cached_receipt(columns[0])
            assert receipt is not None  # the script only reports receipts  # noqa: S101
            out.append(Replay(receipt))
        elif kind == "busy":
            out.append(Busy(int(columns[0])))
        else:
            # One comma-joined string per column: 3 bulk replies to parse, not 3 per inbox.
            lasts, positions, eras = (column.split(",") for column in columns)
            users = request.user_ids
            out.append(Reservation(
                now_ms=now_ms, deadline_ms=deadline_ms,
                previous=dict(zip(users, map(int, lasts), strict=True)),
                positions=dict(zip(users, map(int, positions), strict=True)),
                eras=dict(zip(users, eras, strict=True)),
            ))  # fmt: skip
    return out


def receipt_json(receipt: SendReceipt) -> str:
    """A committed attempt's receipt as its idempotency key holds it (``r:`` + JSON)."""
    return "r:" + json.dumps(
        [receipt.msg_id, receipt.id, receipt.conversation_id, receipt.created_at_ms]
    )


def cached_receipt(value: Any) -> SendReceipt | None:
    """The receipt an idempotency key holds (``receipt_json``), None for a claim (``p:...``)
    or no value."""
    if value is None or not text(value).startswith("r:"):
        return None
    return SendReceipt(*json.loads(text(value)[2:]))


def entry_fields(draft: EntryDraft, message: Message | None,
                 key: tuple[int, str] | None) -> dict[str, str]:
    """A stream entry's fields: the draft (``e``), and what a fence of it must delete: the
    history message (``m``) and the idempotency key (``k``)."""
    fields = {"e": draft_to_json(draft)}
    if message is not None:
        fields["m"] = json.dumps([message.msg_id, message.conversation_id])
    if key is not None:
        fields["k"] = json.dumps(list(key))
    return fields


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A stream entry read back: enough to fence what its append wrote to Cassandra."""

    draft: EntryDraft
    message: Message | None
    key: tuple[int, str] | None


def stored_entry(fields: Mapping[str, str]) -> StoredEntry:
    """Inverse of ``entry_fields`` (the history message has only its id and conversation)."""
    draft = draft_from_json(fields["e"])
    message = None
    if "m" in fields:
        msg_id, cid = json.loads(fields["m"])
        message = Message(msg_id, cid, draft.sender_id, draft.sender_device_id, "", 0)
    key: tuple[int, str] | None = None
    if "k" in fields:
        sender, client_key = json.loads(fields["k"])
        key = (int(sender), str(client_key))
    return StoredEntry(draft, message, key)


ReceiptWrite = tuple[str, str, int]
"""What a commit stores on success: (idempotency key, receipt value, ttl ms)."""


def _commit_call(reservation: Reservation, receipt: ReceiptWrite | None, token: str | None
                 ) -> tuple[list[str | bytes], list[Any]]:  # fmt: skip
    positions = reservation.positions
    keys: list[str | bytes] = list(_meta_keys(tuple(positions)))
    argv: list[Any] = [
        reservation.deadline_ms,
        ",".join(map(str, positions.values())),
        ",".join(reservation.eras[uid] for uid in positions),
    ]
    if receipt is not None:
        keys.append(receipt[0])
        argv += [receipt[1], receipt[2]]
        if token is not None:
            argv.append(token)
    return keys, argv


class LogUnavailable(Unavailable):
    """Redis did not answer a call of the inbox log (its own error text is in the log)."""


async def _guard(call: Awaitable[T]) -> T:
    """Await a Redis call; its failure becomes ``LogUnavailable`` (a 503 naming Redis), so
    that callers tell a Redis outage from a Cassandra one without knowing the client."""
    try:
        return await call
    except (RedisError, OSError) as exc:
        log.warning("Redis: inbox log call failed: %s", exc)
        raise LogUnavailable("Redis is unavailable; retry later") from exc


class RedisInboxLog:
    """The Redis half of the hybrid store: one Lua call per step (see the module docstring)."""

    def __init__(self, redis: Redis, *, maxlen: int = 10000, skew_ms: int = 1000) -> None:
        """Use ``redis``; streams keep about ``maxlen`` entries; positions are at least
        ``reserve time - skew_ms`` so time-based fencing can bound them."""
        self.redis = redis
        self.maxlen = maxlen
        self.skew_ms = skew_ms
        self._reserve = redis.register_script(RESERVE)
        self._commit = redis.register_script(COMMIT)
        self._release = redis.register_script(RELEASE)
        self._commits: Coalescer[tuple[Reservation, ReceiptWrite | None, str | None], str] = (
            Coalescer(self._commit_pipeline))
        self._abort = redis.register_script(ABORT)
        self._seed = redis.register_script(SEED)
        self._read = redis.register_script(READ)

    async def reserve(
        self, user_ids: Sequence[int], msg_id: int, ttl_ms: int, fields: Mapping[str, str]
    ) -> Reservation | NeedsSeed | Recovering:
        """Assign each inbox ``max(head + 1, msg_id, time floor)``, append the entry to its
        stream and mark it pending until ``now + ttl_ms``; all or nothing, one call."""
        found = await self.reserve_all([ReserveRequest(tuple(user_ids), msg_id, fields)], ttl_ms)
        if isinstance(found, NeedsSeed | Recovering):
            return found
        reservation = found[0]
        assert isinstance(reservation, Reservation)  # no claim, so no replay  # noqa: S101
        return reservation

    async def reserve_all(self, requests: Sequence[ReserveRequest], ttl_ms: int,
                          claim_ttl_ms: int = 6_000
                          ) -> list[Reservation | Replay | Busy] | NeedsSeed | Recovering:
        """Reserve every message in list order in one atomic call (``RESERVE``), claiming
        each one's key for ``claim_ttl_ms`` (at least ``ttl_ms``: the claim must outlive the
        reservation's deadline): per message a ``Reservation``, or ``Replay`` / ``Busy``
        (nothing reserved for it). ``NeedsSeed`` / ``Recovering``: nothing at all was
        reserved or claimed."""
        if claim_ttl_ms <= ttl_ms and any(r.claim is not None for r in requests):
            raise ValueError(f"claim_ttl_ms ({claim_ttl_ms}) must exceed ttl_ms ({ttl_ms})")
        keys: list[bytes | str] = []
        users: list[int | None] = []
        argv: list[Any] = [ttl_ms, self.maxlen, self.skew_ms, EPOCH_MS, claim_ttl_ms,
                           len(requests)]
        for request in requests:
            keys += _meta_keys(request.user_ids)
            users += request.user_ids
            claim = request.claim
            flat = [item for pair in request.fields.items() for item in pair]
            argv += [len(request.user_ids), request.msg_id, claim.token if claim else "",
                     len(flat), *flat]
            if claim is not None:
                keys.append(claim.key)
                users.append(None)
        reply = await _guard(self._reserve(keys=keys, args=argv))
        return _reserve_results(requests, users, reply)

    async def reserve_many(
        self, requests: Sequence[tuple[Sequence[int], int, Mapping[str, str]]], ttl_ms: int
    ) -> list[Reservation | NeedsSeed | Recovering]:
        """``reserve`` for several entries ``(user_ids, msg_id, fields)``, in list order, in
        one call (all or nothing: a missing or recovering sequencer fails every entry)."""
        found = await self.reserve_all(
            [ReserveRequest(tuple(users), msg_id, fields) for users, msg_id, fields in requests],
            ttl_ms)
        if isinstance(found, NeedsSeed | Recovering):
            return [found] * len(requests)
        return [r for r in found if isinstance(r, Reservation)]

    async def commit(
        self, reservation: Reservation, receipt: ReceiptWrite | None, claim: Claim | None = None
    ) -> str:
        """Clear the pending marks if all are there and unexpired: ``ok``; ``lost`` if
        every inbox's sequencer changed era (Redis lost its data); ``expired`` otherwise
        (a mark expired or was fenced, or ``claim`` was taken over by another attempt).
        ``receipt`` = (key, value, ttl ms) is stored on ``ok``, atomically. Commits issued in
        the same loop iteration share a pipeline."""
        return await self._commits.submit((reservation, receipt,
                                           claim.token if claim is not None else None))

    async def commit_many(self, reservations: Sequence[Reservation]) -> list[str]:
        """``commit`` (without receipts) for several reservations in one round trip."""
        return await self._commit_pipeline([(r, None, None) for r in reservations])

    async def _commit_pipeline(
        self, commits: Sequence[tuple[Reservation, ReceiptWrite | None, str | None]]
    ) -> list[str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for reservation, receipt, token in commits:
                keys, argv = _commit_call(reservation, receipt, token)
                await self._commit(keys=keys, args=argv, client=pipe)
            return [text(reply) for reply in await _guard(pipe.execute())]

    async def release_claim(self, claim: Claim) -> None:
        """Drop the claim unless a receipt replaced it (compare-and-delete)."""
        await _guard(self._release(keys=[claim.key], args=[claim.token]))

    async def receipt(self, key: str) -> SendReceipt | None:
        """The committed receipt an idempotency key holds, if any."""
        return cached_receipt(await _guard(self.redis.get(key)))

    async def cache_receipt(self, key: str, receipt: SendReceipt, ttl_ms: int) -> None:
        """Store a committed attempt's receipt under its key (after Redis lost the claim)."""
        await _guard(self.redis.set(key, receipt_json(receipt), px=ttl_ms))

    async def last_position(self, user_id: int, upto: int) -> int | None:
        """The largest position at or below ``upto`` that the stream holds, if any."""
        last = await _guard(self.redis.xrevrange(stream_key(user_id), f"{upto}-0", "-",
                                                 count=1))
        return int(text(last[0][0])[:-2]) if last else None

    async def ping(self) -> None:
        """Return when Redis answers."""
        await _guard(self.redis.ping())

    async def abort(self, positions: Mapping[int, int], deadline_ms: int) -> None:
        """Drop pending marks and stream entries (after a fence; nothing reads them again)."""
        if positions:
            keys = [meta_key(uid) for uid in positions]
            argv: list[Any] = [deadline_ms, ",".join(map(str, positions.values()))]
            await _guard(self._abort(keys=keys, args=argv))

    async def seed(
        self, user_id: int, head: int, last: int, floor: int, recover_ms: int, started_ms: int,
        max_age_ms: int,
        era: str,
    ) -> int:
        """Create the inbox's sequencer if it is missing: 1 done, 0 already there,
        -1 refused because the seed was computed more than ``max_age_ms`` ago."""
        if "," in era:
            raise ValueError("an era must not contain ','")  # the scripts join eras with it
        args: list[Any] = [head, last, floor, recover_ms, started_ms, max_age_ms, era]
        return int(await _guard(self._seed(keys=[meta_key(user_id)], args=args)))

    async def state(self, user_id: int, after: int, count: int, pending_limit: int = 64
                    ) -> InboxState:  # fmt: skip
        """Sequencer, pending positions and up to ``count`` stream entries after ``after``."""
        keys = [meta_key(user_id), stream_key(user_id)]
        reply = await _guard(self._read(keys=keys, args=[after, count, pending_limit]))
        pending = []
        for member in reply[4]:
            pos, _, deadline = text(member).partition(":")
            pending.append((int(pos), int(deadline)))
        entries = []
        for entry_id, flat in reply[5]:
            values = [text(v) for v in flat]
            fields = dict(zip(values[::2], values[1::2], strict=True))
            entries.append((int(text(entry_id)[:-2]), fields))
        head = text(reply[1])
        return InboxState(
            now_ms=int(text(reply[0])), head=int(head) if head else None,
            floor=int(text(reply[2])), recover_ms=int(text(reply[3])), pending=pending,
            entries=entries,
        )  # fmt: skip

    async def entry(self, user_id: int, pos: int) -> dict[str, str] | None:
        """The stream entry at ``pos``, if the stream still holds it."""
        found = await _guard(self.redis.xrange(stream_key(user_id), f"{pos}-0", f"{pos}-0"))
        if not found:
            return None
        fields = found[0][1] or {}
        return {text(k): text(v) for k, v in fields.items()}

    async def pending_deadline(self, user_id: int, pos: int) -> int | None:
        """The deadline (Redis ms) of the pending mark at ``pos`` in the inbox, None if there
        is no mark (committed, fenced, or never reserved)."""
        value = await _guard(self.redis.hget(meta_key(user_id), f"p:{pos}"))
        return int(text(value)) if value is not None else None

    async def time_ms(self) -> int:
        """Redis's clock (the sequencer's time base)."""
        seconds, micros = await _guard(self.redis.time())
        return int(seconds) * 1000 + int(micros) // 1000
