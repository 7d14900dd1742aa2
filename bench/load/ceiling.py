"""Whether a step kept up, and the rate sweep that finds the ceiling. No I/O.

A step **keeps up** when every message sent arrived everywhere it should, nothing failed, the
p99 latency (from each send's due time) stayed under the limit (5 s), and the deliveries that
landed during the measured window were at least 90 % of those offered (a short step can end
before a server falling behind has pushed p99 past 5 s; everything then still arrives in the
grace period). The sweep doubles the
rate while steps keep up, then bisects (geometrically) between the best rate that kept up and
the lowest that did not, until they are within ``precision`` of each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

P99_LIMIT_S = 5.0
MIN_ACHIEVED = 0.9


def verdict(expected: int, received: int, errors: int, p99_s: float | None,
            limit_s: float = P99_LIMIT_S, offered: float | None = None,
            achieved: float | None = None) -> tuple[bool, list[str]]:  # fmt: skip
    """``(kept_up, reasons it did not)`` for one step (rates optional, per second)."""
    reasons = []
    if offered and achieved is not None and achieved < MIN_ACHIEVED * offered:
        reasons.append(f"achieved {achieved:,.0f}/s < {MIN_ACHIEVED:.0%} of {offered:,.0f}/s")
    if received < expected:
        reasons.append(f"{expected - received} of {expected} deliveries missing")
    if errors:
        reasons.append(f"{errors} errors")
    if p99_s is None and expected:
        reasons.append("no latency measured")
    elif p99_s is not None and p99_s >= limit_s:
        reasons.append(f"p99 {p99_s:.2f} s >= {limit_s:g} s")
    return not reasons, reasons


@dataclass
class CeilingSearch:
    """Propose rates (``next_rate``) and learn from each step's outcome (``record``)."""

    start: float
    factor: float = 2.0
    precision: float = 0.15  # stop when the lowest failing rate is within 15 % of the best
    max_rate: float = 1e6
    min_rate: float = 1.0
    max_steps: int = 12
    results: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def ceiling(self) -> float | None:
        """The highest rate that kept up so far."""
        good = [rate for rate, ok in self.results if ok]
        return max(good) if good else None

    @property
    def lowest_failure(self) -> float | None:
        """The lowest rate that did not keep up so far."""
        bad = [rate for rate, ok in self.results if not ok]
        return min(bad) if bad else None

    def record(self, rate: float, kept_up: bool) -> None:
        """Note a step's outcome."""
        self.results.append((rate, kept_up))

    def next_rate(self) -> float | None:
        """The next rate to try, or None when the search is done."""
        if not self.results:
            return self.start
        if len(self.results) >= self.max_steps:
            return None
        good, bad = self.ceiling, self.lowest_failure
        if bad is None:  # still climbing
            assert good is not None
            if good >= self.max_rate:
                return None
            return min(good * self.factor, self.max_rate)
        if good is None:  # even the first failed: come down
            lower = bad / self.factor
            return lower if lower >= self.min_rate else None
        if bad <= good * (1 + self.precision):
            return None
        return round(math.sqrt(good * bad), 1)
