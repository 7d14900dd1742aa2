"""``bench_append`` at a tiny scale on real servers: every case runs and writes its rows (a
raw statement that drifted from the schema used to kill a writer thread and hang the run)."""

from __future__ import annotations

import argparse
from typing import Any

from bench.bench_append import measure


async def test_every_append_case_runs_on_real_redis_and_cassandra(
        redis_server: Any, cassandra_server: Any) -> None:
    args = argparse.Namespace(messages=40, repeat=1, only=["redis", "cassandra", "hybrid"])
    out = await measure(args, redis_server.url, cassandra_server.contact_point)
    assert set(out) == {"redis", "cassandra", "hybrid"}
    for group, samples in out.items():
        assert samples, group
        for name, sample in samples.items():
            assert sample.units > 0 and sample.seconds > 0, (group, name)
