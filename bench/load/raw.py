"""The raw store limits, measured in the same run as the load: ``bench.bench_append``'s
Redis, Cassandra and hybrid-append cases, once each, against the stores the server uses."""

from __future__ import annotations

import argparse
from typing import Any

from bench.measure import Sample


def _sample_json(sample: Sample) -> dict[str, Any]:
    cuts = sample.percentiles()
    return {"rate": round(sample.rate, 1), "unit": f"{sample.unit}/s",
            "p50_ms": cuts[0] if cuts else None, "p99_ms": cuts[2] if cuts else None,
            "notes": sample.notes}  # fmt: skip


def run_raw(redis_url: str, cassandra: str, messages: int) -> dict[str, Any]:
    """Run ``bench_append``'s cases (one run each) on uvloop; rates by group and case."""
    import uvloop

    from bench.bench_append import measure

    args = argparse.Namespace(repeat=1, messages=messages, only=["redis", "cassandra", "hybrid"])
    out = uvloop.run(measure(args, redis_url, cassandra))
    return {group: {case: _sample_json(s) for case, s in cases.items()}
            for group, cases in out.items()}  # fmt: skip
