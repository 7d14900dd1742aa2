"""Snowflake generator speed on one core: ``python bench/bench_snowflake.py``.

Prints ids/s and per-call latency percentiles for ``next_id()`` and ``next_ids(1000)`` with the
real system clock. The layout caps one generator at 4096 ids per ms (4.096M ids/s).

``next_id()`` costs well under a microsecond, close to ``perf_counter_ns``'s own overhead, so its
latency is measured per batch of 1000 calls and reported as batch time / 1000 (a mean per call
within each batch); ``next_ids(1000)`` calls are long enough to time one by one.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idgen.clock import SYSTEM_CLOCK  # noqa: E402
from idgen.snowflake import MAX_SEQUENCE, SnowflakeGenerator  # noqa: E402

LAYOUT_LIMIT_PER_S = (MAX_SEQUENCE + 1) * 1000


def percentiles(samples_ns: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 of ``samples_ns``."""
    cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def rate(call: Callable[[], object], ids_per_call: int, seconds: float) -> float:
    """Call ``call`` in a tight loop for about ``seconds``; return ids (or calls) per second."""
    calls = 0
    chunk = max(1, 100_000 // ids_per_call)
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(chunk):
            call()
        calls += chunk
        now = time.perf_counter()
        if now >= deadline:
            return calls * ids_per_call / (now - started)


def batched_latency(call: Callable[[], object], batch: int, batches: int) -> list[float]:
    """Per-call ns, each the mean over one batch of ``batch`` back-to-back calls."""
    clock = time.perf_counter_ns
    loop = range(batch)
    out: list[float] = []
    for _ in range(batches):
        started = clock()
        for _ in loop:
            call()
        out.append((clock() - started) / batch)
    return out


def rates(call: Callable[[], object], ids_per_call: int, seconds: float) -> list[float]:
    """Five ``rate`` runs sharing ``seconds``: other load on the machine only ever slows one."""
    return sorted(rate(call, ids_per_call, seconds / 5) for _ in range(5))


def report(name: str, runs: list[float], samples_ns: list[float], note: str) -> None:
    """Print one result line pair: throughput (median and best run) and latency."""
    median, best = statistics.median(runs), max(runs)
    share = median / LAYOUT_LIMIT_PER_S
    print(
        f"{name:<15} {median / 1e6:5.2f} M ids/s median of 5 runs, best {best / 1e6:5.2f}"
        f"  ({share:4.0%} of the layout limit)"
    )
    print(f"{'':<15} latency p50 {p50_95_99(samples_ns)}  ({note})")


def p50_95_99(samples_ns: list[float]) -> str:
    """The three percentiles, formatted."""
    p50, p95, p99 = percentiles(samples_ns)
    return f"{p50:9.0f} ns  p95 {p95:9.0f} ns  p99 {p99:9.0f} ns"


def main() -> None:
    """Run the benchmark and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per throughput test")
    args = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.machine()}, one thread")
    print(f"layout limit: {LAYOUT_LIMIT_PER_S / 1e6:.3f} M ids/s per generator")
    gen = SnowflakeGenerator(1)
    next_id = gen.next_id
    batch_of_1000 = lambda: gen.next_ids(1000)  # noqa: E731
    rate(next_id, 1, 0.2)  # warm up

    runs = rates(next_id, 1, args.seconds)
    samples = batched_latency(next_id, batch=1000, batches=3000)
    report("next_id()", runs, samples, "mean per call within batches of 1000 calls")

    runs = rates(batch_of_1000, 1000, args.seconds)
    samples = batched_latency(batch_of_1000, batch=1, batches=5000)
    report("next_ids(1000)", runs, samples, "each call timed alone")

    # Where next_id()'s time goes: the clock read alone is most of it.
    now_ms = SYSTEM_CLOCK.now_ms
    reads = rates(now_ms, 1, args.seconds / 2)
    per_read = 1e9 / statistics.median(reads)
    per_id = 1e9 / statistics.median(rates(next_id, 1, args.seconds / 2))
    print(f"clock read (SystemClock.now_ms) {per_read:4.0f} ns of next_id()'s {per_id:4.0f} ns")


if __name__ == "__main__":
    main()
