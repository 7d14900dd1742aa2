"""Snowflake ids: 41-bit ms since ``EPOCH_MS``, 10-bit worker id, 12-bit sequence.

``id = (ms - EPOCH_MS) << 22 | worker_id << 12 | sequence``. Ids from one generator are strictly
increasing; ids from different worker ids never collide. Ids from *different* nodes are only
roughly time-ordered (clock skew), so readers must order by visibility, not by id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from idgen.clock import SYSTEM_CLOCK, Clock

EPOCH_MS: Final = 1735689600000
"""2025-01-01T00:00:00Z in Unix milliseconds."""

TIMESTAMP_BITS: Final = 41
WORKER_ID_BITS: Final = 10
SEQUENCE_BITS: Final = 12
WORKER_ID_SHIFT: Final = SEQUENCE_BITS
TIMESTAMP_SHIFT: Final = SEQUENCE_BITS + WORKER_ID_BITS
MAX_WORKER_ID: Final = (1 << WORKER_ID_BITS) - 1
MAX_SEQUENCE: Final = (1 << SEQUENCE_BITS) - 1
MAX_TIMESTAMP_MS: Final = EPOCH_MS + (1 << TIMESTAMP_BITS) - 1
MAX_ID: Final = (1 << (TIMESTAMP_BITS + TIMESTAMP_SHIFT)) - 1

_EPOCH_DT: Final = datetime(2025, 1, 1, tzinfo=UTC)
_EXHAUSTED_PAUSE_S: Final = 0.00005
"""How long to sleep between clock reads while waiting for the next millisecond."""
_WAIT_SLACK_MS: Final = 100
"""Extra sleep allowed beyond ``max_backward_ms`` before a clock that will not advance is fatal."""


class ClockError(RuntimeError):
    """The clock cannot be used to issue ids (outside the id range, or not advancing)."""


class ClockMovedBackwardsError(ClockError):
    """The clock is further behind the last issued id than the generator may wait out."""

    def __init__(self, now_ms: int, last_ms: int, max_backward_ms: int) -> None:
        self.now_ms = now_ms
        self.last_ms = last_ms
        super().__init__(
            f"clock moved backwards: it reads {now_ms} ms, {last_ms - now_ms} ms behind the "
            f"last issued id's {last_ms} ms (max_backward_ms={max_backward_ms}); refusing to "
            "issue ids that could repeat"
        )


class SnowflakeParts(NamedTuple):
    """The three fields of a Snowflake id."""

    timestamp_ms: int
    worker_id: int
    sequence: int


class SnowflakeGenerator:
    """Issues strictly increasing Snowflake ids for one leased worker id.

    Not thread-safe: it is meant for one asyncio event loop (one thread); ``next_id`` never
    awaits, so concurrent tasks cannot interleave inside it. Waits use ``clock.block`` and so
    block the loop: at most about a millisecond when a millisecond's 4096 ids are used up, at
    most about ``max_backward_ms`` when the clock stepped back. A larger step back raises
    ``ClockMovedBackwardsError`` instead of ever repeating an id.
    """

    __slots__ = (
        "_base",
        "_last_ms",
        "_max_backward_ms",
        "_now_ms",
        "_seq",
        "_sleep",
        "_worker_bits",
        "worker_id",
    )

    def __init__(
        self, worker_id: int, clock: Clock = SYSTEM_CLOCK, max_backward_ms: int = 1000
    ) -> None:
        """Create a generator for ``worker_id`` (0..1023) reading ``clock``."""
        if isinstance(worker_id, bool) or not isinstance(worker_id, int):
            raise TypeError(f"worker_id must be an int, got {type(worker_id).__name__}")
        if not 0 <= worker_id <= MAX_WORKER_ID:
            raise ValueError(f"worker_id must be in 0..{MAX_WORKER_ID}, got {worker_id}")
        if max_backward_ms < 0:
            raise ValueError(f"max_backward_ms must be >= 0, got {max_backward_ms}")
        self.worker_id: Final = worker_id
        self._worker_bits = worker_id << WORKER_ID_SHIFT
        # Bound methods cached so the hot path does one attribute load per clock read.
        self._now_ms: Callable[[], int] = clock.now_ms
        self._sleep: Callable[[float], None] = clock.block
        self._max_backward_ms = max_backward_ms
        self._last_ms = -1  # ms of the last issued id
        self._seq = MAX_SEQUENCE  # sequence of the last issued id
        self._base = 0  # (last_ms - EPOCH_MS) << 22 | worker bits

    def next_id(self) -> int:
        """Return a new id, larger than every id this generator issued before."""
        now = self._now_ms()
        if now == self._last_ms:
            seq = self._seq + 1
            if seq <= 4095:  # MAX_SEQUENCE as a literal: a constant load on the hot path
                self._seq = seq
                return self._base | seq
        elif now > self._last_ms:
            self._enter_ms(now)
            self._seq = 0
            return self._base
        now = self._wait_for_room(now)
        if now > self._last_ms:
            self._enter_ms(now)
        self._seq += 1
        return self._base | self._seq

    def next_ids(self, n: int) -> list[int]:
        """Return ``n`` new strictly increasing ids, reading the clock once per millisecond used.

        Meant for fan-out: all ids that fit in the current millisecond come from one clock read
        and one ``range``; more than 4096 ids wait for the following milliseconds.
        """
        if n <= 0:
            if n == 0:
                return []
            raise ValueError(f"n must be >= 0, got {n}")
        out: list[int] = []
        now = self._now_ms()
        while True:
            if now > self._last_ms:
                self._enter_ms(now)
            elif now < self._last_ms or self._seq >= MAX_SEQUENCE:
                now = self._wait_for_room(now)
                continue
            first = self._seq + 1
            take = min(n, MAX_SEQUENCE + 1 - first)
            self._seq = first + take - 1
            start = self._base | first
            if take == n and not out:
                return list(range(start, start + take))
            out.extend(range(start, start + take))
            n -= take
            if n == 0:
                return out
            now = self._now_ms()

    def _enter_ms(self, now: int) -> None:
        """Start issuing ids in millisecond ``now`` (> the last one used)."""
        if not EPOCH_MS <= now <= MAX_TIMESTAMP_MS:
            raise ClockError(
                f"clock reads {now} ms, outside the Snowflake range {EPOCH_MS}..{MAX_TIMESTAMP_MS}"
            )
        self._last_ms = now
        self._seq = -1
        self._base = ((now - EPOCH_MS) << TIMESTAMP_SHIFT) | self._worker_bits

    def _wait_for_room(self, now: int) -> int:
        """Sleep until the clock allows another id; return that reading.

        The clock must read at least the last used millisecond, and a later one if that
        millisecond's sequence numbers are used up.
        """
        last = self._last_ms
        budget_s = (self._max_backward_ms + _WAIT_SLACK_MS) / 1000
        slept_s = 0.0
        while now < last or (now == last and self._seq >= MAX_SEQUENCE):
            behind = last - now
            if behind > self._max_backward_ms:
                raise ClockMovedBackwardsError(now, last, self._max_backward_ms)
            if slept_s > budget_s:
                if behind > 0:
                    raise ClockMovedBackwardsError(now, last, self._max_backward_ms)
                raise ClockError(f"clock stuck at {now} ms after sleeping {slept_s:.3f} s")
            pause_s = behind / 1000 if behind > 0 else _EXHAUSTED_PAUSE_S
            self._sleep(pause_s)
            slept_s += pause_s
            now = self._now_ms()
        return now


def _check_id(snowflake: int) -> None:
    if isinstance(snowflake, bool) or not isinstance(snowflake, int):
        raise TypeError(f"a Snowflake id is an int, got {type(snowflake).__name__}")
    if not 0 <= snowflake <= MAX_ID:
        raise ValueError(f"not a Snowflake id (must be in 0..{MAX_ID}): {snowflake}")


def _check_ms(ms: int) -> None:
    if not EPOCH_MS <= ms <= MAX_TIMESTAMP_MS:
        raise ValueError(
            f"timestamp {ms} ms is outside the Snowflake range {EPOCH_MS}..{MAX_TIMESTAMP_MS}"
        )


def encode(timestamp_ms: int, worker_id: int, sequence: int) -> int:
    """Build the id with these fields (validated); the inverse of ``decode``."""
    _check_ms(timestamp_ms)
    if not 0 <= worker_id <= MAX_WORKER_ID:
        raise ValueError(f"worker_id must be in 0..{MAX_WORKER_ID}, got {worker_id}")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence must be in 0..{MAX_SEQUENCE}, got {sequence}")
    return (timestamp_ms - EPOCH_MS) << TIMESTAMP_SHIFT | worker_id << WORKER_ID_SHIFT | sequence


def decode(snowflake: int) -> SnowflakeParts:
    """Split an id into its Unix-ms timestamp, worker id and sequence."""
    _check_id(snowflake)
    return SnowflakeParts(
        timestamp_ms=(snowflake >> TIMESTAMP_SHIFT) + EPOCH_MS,
        worker_id=(snowflake >> WORKER_ID_SHIFT) & MAX_WORKER_ID,
        sequence=snowflake & MAX_SEQUENCE,
    )


def timestamp_ms(snowflake: int) -> int:
    """Return the Unix-ms time at which the id was issued."""
    _check_id(snowflake)
    return (snowflake >> TIMESTAMP_SHIFT) + EPOCH_MS


def to_datetime(snowflake: int) -> datetime:
    """Return the issue time of the id as an aware UTC ``datetime`` (millisecond precision)."""
    return _EPOCH_DT + timedelta(milliseconds=timestamp_ms(snowflake) - EPOCH_MS)


def min_id_for_ms(ms: int) -> int:
    """Return the smallest id any worker can issue at Unix-ms ``ms``.

    Every id issued at ``ms`` or later is ``>=`` it and every id issued earlier is ``<`` it,
    which makes it the boundary for time buckets and time-based cursors.
    """
    _check_ms(ms)
    return (ms - EPOCH_MS) << TIMESTAMP_SHIFT
