"""What every benchmark case shares: timing a run, repeating it, and printing one line.

A case is an async function that returns a ``Sample`` (units done, seconds, per-call
latencies). ``median_of`` runs it ``repeat`` times and keeps the run with the median rate
(the box has 2 cores shared with the servers and other work, so single runs are noisy), and
prints every run's rate next to it so the spread is visible.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    """One run of one case."""

    name: str
    units: float
    seconds: float
    unit: str
    latencies: list[float] = field(default_factory=list)  # seconds per call
    cpu_seconds: float = 0.0  # this process's CPU time during the run
    notes: str = ""
    all_units: float = 0.0  # units including side work (e.g. history rows beside inbox rows)

    @property
    def rate(self) -> float:
        """Units per second."""
        return self.units / self.seconds if self.seconds > 0 else 0.0

    @property
    def all_rate(self) -> float:
        """``all_units`` per second (0 when not counted)."""
        return self.all_units / self.seconds if self.seconds > 0 else 0.0

    def percentiles(self) -> tuple[float, float, float] | None:
        """p50, p95, p99 of the per-call latencies in ms (None without enough calls)."""
        if len(self.latencies) < 2:
            return None
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[49] * 1e3, cuts[94] * 1e3, cuts[98] * 1e3


async def drive(op: Callable[[int], Awaitable[None]], count: int, concurrency: int
                ) -> tuple[float, list[float], float]:  # fmt: skip
    """Run ``op(i)`` for i < count with ``concurrency`` workers: (seconds, latencies, cpu s)."""
    latencies: list[float] = []
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - started)

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, time.process_time() - cpu


def short_rate(rate: float) -> str:
    """``146.7k`` for large rates, ``76`` or ``3.4`` for small ones."""
    if rate >= 1000:
        return f"{rate / 1000:.1f}k"
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"


def line(sample: Sample, runs: list[Sample] | None = None, raw: float | None = None) -> str:
    """The printed form: rate, latency percentiles, ratio to ``raw``, the runs' rates."""
    text = f"{sample.name:<52} {sample.rate:>10,.0f} {sample.unit}/s"
    cuts = sample.percentiles()
    if cuts is not None:
        text += "  p50 {:6.2f} p95 {:6.2f} p99 {:6.2f} ms".format(*cuts)
    if raw:
        text += f"  = {sample.rate / raw:4.0%} of raw"
    if sample.cpu_seconds:
        text += f"  client {sample.cpu_seconds / sample.seconds:.2f} cores"
    if runs and len(runs) > 1:
        text += "  runs " + "/".join(short_rate(r.rate) for r in runs)
    if sample.all_units:
        text += f"  [{sample.all_rate:,.0f} {sample.unit}/s in all]"
    if sample.notes:
        text += f"  [{sample.notes}]"
    return text


async def median_of(repeat: int, case: Callable[[], Awaitable[Sample]],
                    raw: float | None = None) -> Sample:  # fmt: skip
    """Run ``case`` ``repeat`` times, print the median run (by rate) and return it."""
    runs = [await case() for _ in range(repeat)]
    median = sorted(runs, key=lambda s: s.rate)[len(runs) // 2]
    print(line(median, runs, raw), flush=True)
    return median


def load_average() -> str:
    """The 1/5/15-minute load averages, to print next to results."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"
