"""Snowflake generator and decode helpers, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import pytest

from idgen.clock import SystemClock
from idgen.snowflake import (
    EPOCH_MS,
    MAX_ID,
    MAX_SEQUENCE,
    MAX_TIMESTAMP_MS,
    ClockError,
    ClockMovedBackwardsError,
    SnowflakeGenerator,
    SnowflakeParts,
    decode,
    encode,
    min_id_for_ms,
    timestamp_ms,
    to_datetime,
)

T0 = EPOCH_MS + 86_400_000  # 2025-01-02T00:00:00Z


class FakeClock:
    """A wall clock in nanoseconds that moves only when told to or when slept on."""

    def __init__(self, start_ms: int = T0, *, frozen: bool = False) -> None:
        self.ns = start_ms * 1_000_000
        self.frozen = frozen  # sleep() does not advance time (a stuck clock)
        self.reads = 0
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        self.reads += 1
        return self.ns // 1_000_000

    def monotonic(self) -> float:
        return self.ns / 1e9

    async def sleep(self, seconds: float) -> None:
        self.block(seconds)

    def block(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if not self.frozen:
            self.ns += round(seconds * 1e9)

    def set_ms(self, ms: int) -> None:
        self.ns = ms * 1_000_000

    @property
    def ms(self) -> int:
        return self.ns // 1_000_000


def assert_strictly_increasing(ids: list[int]) -> None:
    bad = next((i for i in range(1, len(ids)) if ids[i] <= ids[i - 1]), None)
    assert bad is None, f"ids[{bad}]={ids[bad]} <= ids[{bad - 1}]={ids[bad - 1]}"


# --- layout and decoding ---------------------------------------------------------------------


def test_layout_matches_the_spec_formula() -> None:
    clock = FakeClock(EPOCH_MS + 1)
    gen = SnowflakeGenerator(5, clock)
    assert [gen.next_id() for _ in range(3)] == [
        (1 << 22) | (5 << 12) | 0,
        (1 << 22) | (5 << 12) | 1,
        (1 << 22) | (5 << 12) | 2,
    ]
    assert encode(EPOCH_MS + 1, 5, 7) == 4_214_791


def test_decode_round_trips_generated_ids() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(1023, clock)
    for step in range(5000):
        if step % 700 == 0:
            clock.set_ms(clock.ms + 3)
        snowflake = gen.next_id()
        parts = decode(snowflake)
        assert isinstance(parts, SnowflakeParts)
        assert parts.timestamp_ms == clock.ms == timestamp_ms(snowflake)
        assert parts.worker_id == 1023
        assert encode(*parts) == snowflake


@pytest.mark.parametrize(
    ("ms", "worker", "seq"),
    [(EPOCH_MS, 0, 0), (MAX_TIMESTAMP_MS, 1023, MAX_SEQUENCE), (T0 + 123, 42, 4000)],
)
def test_encode_decode_round_trip_at_the_edges(ms: int, worker: int, seq: int) -> None:
    snowflake = encode(ms, worker, seq)
    assert 0 <= snowflake <= MAX_ID
    assert decode(snowflake) == SnowflakeParts(ms, worker, seq)


def test_to_datetime_is_utc_with_millisecond_precision() -> None:
    assert to_datetime(0) == datetime(2025, 1, 1, tzinfo=UTC)
    snowflake = encode(EPOCH_MS + 86_400_000 + 123, 3, 9)
    assert to_datetime(snowflake) == datetime(2025, 1, 2, 0, 0, 0, 123_000, tzinfo=UTC)
    assert to_datetime(snowflake).utcoffset() is not None


def test_min_id_for_ms_bounds_every_id_of_that_millisecond() -> None:
    clock = FakeClock()
    gens = [SnowflakeGenerator(w, clock) for w in (0, 511, 1023)]
    ids = [g.next_id() for g in gens for _ in range(100)]
    assert all(min_id_for_ms(T0) <= i < min_id_for_ms(T0 + 1) for i in ids)
    assert min_id_for_ms(T0) == encode(T0, 0, 0)
    assert min_id_for_ms(T0 + 1) - 1 == encode(T0, 1023, MAX_SEQUENCE)


@pytest.mark.parametrize("bad", [-1, MAX_ID + 1])
def test_decode_rejects_values_that_are_not_snowflakes(bad: int) -> None:
    with pytest.raises(ValueError, match="not a Snowflake id"):
        decode(bad)
    with pytest.raises(ValueError, match="not a Snowflake id"):
        timestamp_ms(bad)


def test_min_id_for_ms_rejects_times_outside_the_range() -> None:
    with pytest.raises(ValueError, match="outside the Snowflake range"):
        min_id_for_ms(EPOCH_MS - 1)
    with pytest.raises(ValueError, match="outside the Snowflake range"):
        min_id_for_ms(MAX_TIMESTAMP_MS + 1)


# --- worker id validation --------------------------------------------------------------------


@pytest.mark.parametrize("worker_id", [-1, 1024, 10**6])
def test_worker_id_out_of_range_is_refused(worker_id: int) -> None:
    with pytest.raises(ValueError, match=r"worker_id must be in 0\.\.1023, got " + str(worker_id)):
        SnowflakeGenerator(worker_id, FakeClock())


def test_worker_id_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="worker_id must be an int"):
        SnowflakeGenerator(True, FakeClock())


@pytest.mark.parametrize("worker_id", [0, 1023])
def test_worker_id_range_ends_are_accepted_and_encoded(worker_id: int) -> None:
    gen = SnowflakeGenerator(worker_id, FakeClock())
    assert gen.worker_id == worker_id
    assert decode(gen.next_id()).worker_id == worker_id


def test_negative_max_backward_is_refused() -> None:
    with pytest.raises(ValueError, match="max_backward_ms"):
        SnowflakeGenerator(1, FakeClock(), max_backward_ms=-1)


# --- sequence exhaustion ---------------------------------------------------------------------


def test_exhausted_millisecond_waits_for_the_next_one() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(7, clock)
    first_ms = [gen.next_id() for _ in range(MAX_SEQUENCE + 1)]
    assert [decode(i).sequence for i in first_ms] == list(range(MAX_SEQUENCE + 1))
    assert clock.sleeps == []

    nxt = gen.next_id()

    assert decode(nxt) == SnowflakeParts(T0 + 1, 7, 0)
    assert nxt > first_ms[-1]
    assert clock.sleeps, "must sleep while waiting for the next millisecond"
    assert all(s < 0.001 for s in clock.sleeps)
    assert sum(clock.sleeps) == pytest.approx(0.001, abs=0.0001)


def test_next_ids_spans_milliseconds_with_one_clock_read_per_millisecond() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(3, clock)

    ids = gen.next_ids(10_000)

    assert len(ids) == 10_000
    assert_strictly_increasing(ids)
    assert [decode(i).timestamp_ms for i in (ids[0], ids[4096], ids[8192])] == [
        T0,
        T0 + 1,
        T0 + 2,
    ]
    # one read per millisecond used, plus one after each sleep while waiting for the next
    assert clock.reads == 3 + len(clock.sleeps)


def test_next_ids_within_one_millisecond_reads_the_clock_once() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(3, clock)
    gen.next_id()
    clock.reads = 0

    ids = gen.next_ids(1000)

    assert clock.reads == 1
    assert [decode(i).sequence for i in ids] == list(range(1, 1001))


def test_next_ids_edge_sizes() -> None:
    gen = SnowflakeGenerator(3, FakeClock())
    assert gen.next_ids(0) == []
    with pytest.raises(ValueError, match="n must be >= 0"):
        gen.next_ids(-1)
    exact = gen.next_ids(MAX_SEQUENCE + 1)
    assert [decode(i).sequence for i in (exact[0], exact[-1])] == [0, MAX_SEQUENCE]


def test_next_id_and_next_ids_interleave_monotonically() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(9, clock)
    ids: list[int] = []
    for n in (1, 4000, 1, 1, 500, 9000, 1, 3):
        ids.extend(gen.next_ids(n) if n > 1 else [gen.next_id()])
    assert len(ids) == 13_507
    assert_strictly_increasing(ids)


# --- clock regression ------------------------------------------------------------------------


def test_small_clock_regression_waits_then_continues_with_larger_ids() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(2, clock, max_backward_ms=1000)
    before = [gen.next_id() for _ in range(10)]
    clock.set_ms(T0 - 500)  # NTP steps the clock back half a second

    after = [gen.next_id() for _ in range(10)]

    assert after[0] > before[-1]
    assert_strictly_increasing(before + after)
    assert clock.sleeps[0] == pytest.approx(0.5)
    assert sum(clock.sleeps) == pytest.approx(0.5)
    assert decode(after[0]).timestamp_ms == T0
    assert decode(after[0]).sequence == 10


def test_regression_at_the_bound_waits_for_next_ids_too() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(2, clock, max_backward_ms=1000)
    last = gen.next_ids(5)[-1]
    clock.set_ms(T0 - 1000)

    ids = gen.next_ids(5)

    assert ids[0] > last
    assert sum(clock.sleeps) == pytest.approx(1.0)


def test_regression_beyond_the_bound_raises_with_both_times() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(2, clock, max_backward_ms=1000)
    last = gen.next_id()
    clock.set_ms(T0 - 1001)

    with pytest.raises(ClockMovedBackwardsError) as caught:
        gen.next_id()
    with pytest.raises(ClockMovedBackwardsError):
        gen.next_ids(3)

    err = caught.value
    assert (err.now_ms, err.last_ms) == (T0 - 1001, T0)
    assert str(T0 - 1001) in str(err) and str(T0) in str(err) and "1001 ms behind" in str(err)
    assert clock.sleeps == [], "must refuse at once, not wait"
    clock.set_ms(T0 + 5)  # once the clock is sane again, ids resume above the old ones
    assert gen.next_id() > last


def test_zero_max_backward_refuses_any_regression() -> None:
    clock = FakeClock()
    gen = SnowflakeGenerator(2, clock, max_backward_ms=0)
    gen.next_id()
    clock.set_ms(T0 - 1)
    with pytest.raises(ClockMovedBackwardsError, match="1 ms behind"):
        gen.next_id()


def test_a_clock_that_keeps_stepping_back_is_refused_after_a_bounded_wait() -> None:
    class Rewinding(FakeClock):
        def block(self, seconds: float) -> None:  # every wait ends 900 ms back again
            self.sleeps.append(seconds)

    clock = Rewinding()
    gen = SnowflakeGenerator(2, clock, max_backward_ms=1000)
    gen.next_id()
    clock.set_ms(T0 - 900)
    with pytest.raises(ClockMovedBackwardsError):
        gen.next_id()
    assert sum(clock.sleeps) <= 1.0 + 0.1 + 0.9


def test_a_stuck_clock_is_an_error_not_a_hang() -> None:
    clock = FakeClock(frozen=True)
    gen = SnowflakeGenerator(2, clock)
    gen.next_ids(MAX_SEQUENCE + 1)
    with pytest.raises(ClockError, match="clock stuck"):
        gen.next_id()
    assert sum(clock.sleeps) == pytest.approx(1.1, abs=0.001)


def test_clock_before_the_epoch_is_refused() -> None:
    gen = SnowflakeGenerator(2, FakeClock(EPOCH_MS - 1))
    with pytest.raises(ClockError, match="outside the Snowflake range"):
        gen.next_id()


def test_random_jitter_never_breaks_monotonicity_or_issues_future_timestamps() -> None:
    rng = random.Random(20250101)  # reproducible test data
    clock = FakeClock()
    gen = SnowflakeGenerator(77, clock, max_backward_ms=50)
    ids: list[int] = []
    for _ in range(5000):
        clock.set_ms(clock.ms + rng.choice((0, 0, 0, 1, 2, -3, -40)))
        batch = gen.next_ids(5000 if rng.random() < 0.02 else rng.choice((1, 1, 2, 7, 50, 600)))
        assert decode(batch[-1]).timestamp_ms <= clock.ms
        ids.extend(batch)
    assert_strictly_increasing(ids)
    assert any(s >= 0.003 for s in clock.sleeps), "regressions were waited out"
    assert any(s < 0.001 for s in clock.sleeps), "exhausted milliseconds were waited out"


# --- the real clock --------------------------------------------------------------------------


def test_one_million_ids_from_next_id_are_unique_and_strictly_increasing() -> None:
    gen = SnowflakeGenerator(1)
    next_id = gen.next_id
    ids = [next_id() for _ in range(1_000_000)]
    assert len(set(ids)) == 1_000_000
    assert_strictly_increasing(ids)
    assert {decode(i).worker_id for i in ids[::10_000]} == {1}


def test_one_million_ids_from_next_ids_are_unique_and_strictly_increasing() -> None:
    gen = SnowflakeGenerator(1)
    ids = gen.next_ids(1_000_000)
    assert len(set(ids)) == 1_000_000
    assert_strictly_increasing(ids)
    # 4096 ids per millisecond at most: a million ids span at least 245 ms
    assert timestamp_ms(ids[-1]) - timestamp_ms(ids[0]) >= 1_000_000 // 4096


def test_system_clock_reads_wall_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    now = SystemClock().now_ms()
    assert before <= now <= time.time_ns() // 1_000_000
    gen = SnowflakeGenerator(4)
    assert before <= timestamp_ms(gen.next_id()) <= time.time_ns() // 1_000_000
