"""A mergeable latency histogram with ~1 % relative precision (log-spaced buckets). No I/O.

Each load-generator process records into its own; the parent merges them. Percentiles use the
nearest-rank rule and report a bucket's geometric middle, clamped to the exact min and max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

STEP = math.log(1.02)  # buckets 2 % wide: a value is reported within 1 % of itself
FLOOR_S = 1e-6  # values below a microsecond share the first bucket


def _bucket(seconds: float) -> int:
    return int(math.log(max(seconds, FLOOR_S) / FLOOR_S) / STEP)


def _middle(bucket: int) -> float:
    return FLOOR_S * math.exp((bucket + 0.5) * STEP)


@dataclass
class Histogram:
    """Counts of latencies (seconds) by bucket, plus the exact count, sum, min and max."""

    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def record(self, seconds: float) -> None:
        """Add one value (negative values, from clock noise, count as 0)."""
        seconds = max(seconds, 0.0)
        bucket = _bucket(seconds)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.count += 1
        self.total += seconds
        self.low = min(self.low, seconds)
        self.high = max(self.high, seconds)

    def merge(self, other: Histogram) -> None:
        """Add every value of ``other``."""
        for bucket, n in other.counts.items():
            self.counts[bucket] = self.counts.get(bucket, 0) + n
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0 < q <= 100), None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return min(max(_middle(bucket), self.low), self.high)
        return self.high

    def summary(self) -> dict[str, float | int | None]:
        """count, mean, p50, p95, p99, max (seconds)."""
        return {
            "count": self.count,
            "mean": self.total / self.count if self.count else None,
            "p50": self.percentile(50), "p95": self.percentile(95),
            "p99": self.percentile(99), "max": self.high if self.count else None,
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """A form that crosses a process boundary or a file and comes back with ``from_json``."""
        return {"counts": {str(b): n for b, n in self.counts.items()}, "count": self.count,
                "total": self.total, "low": self.low if self.count else None,
                "high": self.high if self.count else None}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Histogram:
        """The histogram ``to_json`` described."""
        low, high = data.get("low"), data.get("high")
        return cls({int(b): int(n) for b, n in data["counts"].items()}, int(data["count"]),
                   float(data["total"]), math.inf if low is None else float(low),
                   -math.inf if high is None else float(high))  # fmt: skip


def merged(parts: list[Histogram]) -> Histogram:
    """One histogram holding every value of ``parts``."""
    out = Histogram()
    for part in parts:
        out.merge(part)
    return out
