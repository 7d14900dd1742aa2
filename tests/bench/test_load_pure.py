"""The load generator's pure parts: schedule, body, histogram, ceiling search, verdict,
process plans, /proc parsing and usage, and the report."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from bench.load import plans, procstat, report
from bench.load.ceiling import CeilingSearch, verdict
from bench.load.client import Member
from bench.load.histogram import Histogram, merged
from bench.load.schedule import (
    Schedule,
    client_msg_id,
    encode_body,
    parse_body,
    parse_client_msg_id,
)
from bench.load.traffic import StepTiming


def test_schedule_spreads_sends_evenly_round_robin() -> None:
    s = Schedule(rate=4, duration=2.5, senders=3, start=100.0)
    assert s.count == 10
    assert [s.due(k) for k in (0, 1, 4)] == [100.0, 100.25, 101.0]
    assert [s.sender(k) for k in range(5)] == [0, 1, 2, 0, 1]
    assert list(s.messages_of(frozenset({1}))) == [1, 4, 7]
    everyone = sorted(k for n in range(3) for k in s.messages_of(frozenset({n})))
    assert everyone == list(range(10))


def test_schedule_refuses_a_plan_that_sends_nothing() -> None:
    with pytest.raises(ValueError):
        Schedule(rate=0, duration=1, senders=1)


def test_body_carries_index_and_due_time_and_is_padded() -> None:
    body = encode_body("lgab", 17, 1234.5678901, size=60)
    assert len(body) == 60
    assert parse_body(body, "lgab") == (17, 1234.567890)
    assert parse_body(body, "lgother") is None
    assert parse_body("lgab:x:y:", "lgab") is None
    assert parse_body(None, "lgab") is None
    assert parse_client_msg_id(client_msg_id("lgab", 9), "lgab") == 9
    assert parse_client_msg_id("lgab-x", "lgab") is None


def test_histogram_percentiles_within_one_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-4, 1.5) for _ in range(20_000)]
    hist = Histogram()
    for v in values:
        hist.record(v)
    ordered = sorted(values)
    for q in (50, 95, 99, 99.9):
        exact = ordered[max(0, int(q / 100 * len(ordered) + 0.999999) - 1)]
        assert hist.percentile(q) == pytest.approx(exact, rel=0.011)
    assert hist.percentile(100) == max(values)
    assert hist.summary()["count"] == 20_000


def test_histogram_merge_and_json_round_trip() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for n in range(1, 500):
        (a if n % 2 else b).record(n / 1000)
        both.record(n / 1000)
    back = Histogram.from_json(json.loads(json.dumps(a.to_json())))
    assert merged([back, b]).summary() == both.summary()
    assert Histogram().percentile(50) is None
    assert Histogram.from_json(Histogram().to_json()).summary()["max"] is None


def test_verdict_needs_every_delivery_no_error_and_p99_under_limit() -> None:
    assert verdict(10, 10, 0, 4.9) == (True, [])
    assert verdict(10, 9, 0, 0.1)[0] is False
    assert verdict(10, 10, 1, 0.1)[0] is False
    ok, reasons = verdict(10, 10, 0, 5.0)
    assert not ok and "p99" in reasons[0]
    assert verdict(0, 0, 0, None) == (True, [])
    assert verdict(10, 10, 0, 0.1, offered=100, achieved=91) == (True, [])
    ok, reasons = verdict(10, 10, 0, 0.1, offered=100, achieved=89)
    assert not ok and "achieved" in reasons[0]


def test_ceiling_search_doubles_then_bisects_to_precision() -> None:
    search = CeilingSearch(start=50, precision=0.15)
    capacity = 730.0
    rates = []
    while (rate := search.next_rate()) is not None:
        rates.append(rate)
        search.record(rate, rate <= capacity)
    assert rates[:5] == [50, 100, 200, 400, 800]
    assert search.ceiling is not None and search.lowest_failure is not None
    assert search.ceiling <= capacity < search.lowest_failure
    assert search.lowest_failure <= search.ceiling * 1.15


def test_ceiling_search_comes_down_when_the_first_step_fails_and_stops_at_max() -> None:
    search = CeilingSearch(start=100, min_rate=10)
    search.record(100, False)
    assert search.next_rate() == 50
    search.record(50, False)
    search.record(25, False)
    search.record(12.5, False)
    assert search.next_rate() is None
    top = CeilingSearch(start=100, max_rate=150)
    top.record(100, True)
    assert top.next_rate() == 150
    top.record(150, True)
    assert top.next_rate() is None


def _members(n: int) -> list[Member]:
    return [Member(str(i), f"d{i}", f"t{i}") for i in range(n)]


def test_w1_plan_keeps_pairs_together_and_watches_each_message_once() -> None:
    members = _members(10)
    schedule = Schedule(10, 1, 10)
    jobs = plans.w1_jobs(members, 5, 2, schedule, via="ws", tag="t", base_url="u", ws_url="w",
                         timing=StepTiming())  # fmt: skip
    assert [len(j.sockets) for j in jobs] == [6, 4]
    watchers = {}
    for job in jobs:
        for plan in job.senders:
            sender = job.sockets[plan.socket]
            (sender_index, (receiver,)), = [w for w in job.watch if w[0] == plan.index]
            assert job.sockets[receiver].user_id == plan.to_user != sender.user_id
            watchers[plan.index] = receiver
    assert sorted(watchers) == list(range(10))


def test_w2_plan_spreads_sockets_and_every_process_watches_both_senders() -> None:
    online = _members(5)
    jobs = plans.w2_jobs(online, "g1", 2, Schedule(10, 1, 2), tag="t", base_url="u",
                         ws_url="w", timing=StepTiming())  # fmt: skip
    assert sorted(m.user_id for j in jobs for m in j.sockets) == [m.user_id for m in online]
    assert sorted(p.index for j in jobs for p in j.senders) == [0, 1]
    for job in jobs:
        assert {s for s, _ in job.watch} == {0, 1}
        assert all(len(socks) == len(job.sockets) for _, socks in job.watch)


def test_proc_stat_parsing_and_interpolated_usage() -> None:
    line = "42 (a (weird) name) S " + " ".join(["0"] * 10) + f" {3 * procstat.TICKS} " \
           f"{procstat.TICKS} 0 0"
    assert procstat.parse_stat(line) == 4.0
    assert procstat.parse_statm("100 25 3 0 0 0 0") == 25 * procstat.PAGE
    samples = [procstat.ProcSample(0.0, 0.0, 2**20), procstat.ProcSample(10.0, 5.0, 3 * 2**20)]
    usage = procstat.usage(samples, 2.0, 6.0)
    assert usage == {"cpu_s": 2.0, "cpu_cores": 0.5, "rss_mib": 3.0, "rss_max_mib": 3.0}
    assert procstat.usage(samples[:1], 0, 1) is None


def test_a_process_is_read_with_its_descendants() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in procstat.descendants(os.getpid())
        alone, tree = procstat.read(os.getpid()), procstat.read_tree([os.getpid(), child.pid])
        assert alone is not None and tree is not None and tree.rss > alone.rss
    finally:
        child.kill()
        child.wait()
    assert procstat.read_tree([child.pid]) is None


def _part(received: int, latency: list[float]) -> dict[str, object]:
    hist = Histogram()
    for v in latency:
        hist.record(v)
    return {"sockets": 2, "sent": 4, "acked": 4, "expected": 4, "received": received,
            "expected_measured": 4, "received_measured": received, "in_window": received,
            "duplicates": 0, "client_cpu_s": 0.5, "errors": {"ws:x": 1} if received < 4 else {},
            "last_receive": 9.0, "ready_late_s": 0.0, "latency": hist.to_json(),
            "ack": Histogram().to_json(), "lateness": Histogram().to_json()}  # fmt: skip


def test_report_combines_processes_and_judges_the_step() -> None:
    totals = report.combine([_part(4, [0.01, 0.02]), _part(3, [0.03])])
    assert totals["expected"] == 8 and totals["received"] == 7
    assert totals["latency"].count == 3 and totals["errors"] == {"ws:x": 1}
    record = report.traffic_record("w1 4 msg/s", "w1", 4.0, 1, 2.0, totals,
                                   {"server": {"cpu_cores": 0.5, "rss_mib": 100.0}},
                                   ("1.0", "1.1"))  # fmt: skip
    assert record["missing"] == 1 and record["kept_up"] is False
    assert record["achieved_per_s"] == 3.5
    assert record["latency_ms"]["max"] == 30.0
    json.dumps(record)
    table = report.render([record])
    header, rule, line = table.splitlines()
    assert header.split()[0] == "step" and set(rule) <= {"-", " "}
    assert "w1 4 msg/s" in line and "NO" in line and "0.50c/100M" in line


def test_profile_shares_count_self_and_inclusive_once_per_stack() -> None:
    from bench.load.profile import by_package, frame_name, shares

    lines = [
        "run (/x/lib/python3.11/asyncio/events.py:80);send (/w/inbox/service.py:10);"
        "dumps (/x/lib/python3.11/json/__init__.py:231) 3",
        "run (/x/lib/python3.11/asyncio/events.py:80);send (/w/inbox/service.py:12);"
        "send (/w/inbox/service.py:40) 1",
        "garbage",
    ]
    total, own, inclusive = shares(lines)
    assert total == 4
    assert own["stdlib/json/__init__.py:dumps"] == 3 and own["inbox/service.py:send"] == 1
    assert inclusive["inbox/service.py:send"] == 4
    assert by_package(own) == {"stdlib/json": 3, "inbox": 1}
    assert frame_name("execute (/v/site-packages/cassandra/cluster.py:9)") == \
        "cassandra/cluster.py:execute"


def _storm_part(sockets: int, sync_s: list[float], refusals: dict[str, int],
                per_second: dict[str, dict[str, int]]) -> dict[str, object]:
    hist = Histogram()
    for s in sync_s:
        hist.record(s)
    return {"sockets": sockets, "synced": hist.count, "attempts": sockets + 2, "entries": 9,
            "refusals": refusals, "errors": {}, "sync": hist.to_json(),
            "hello": hist.to_json(), "last_synced": 0.0, "client_late_s": 0.01,
            "client_cpu_s": 0.5, "per_second": per_second}  # fmt: skip


def test_storm_record_adds_up_the_processes_and_times_the_last_sync() -> None:
    parts = [_storm_part(2, [1.0, 3.0], {"503": 2}, {"hello": {"0": 1, "2": 1}}),
             _storm_part(1, [2.0], {"503": 1, "429": 1}, {"hello": {"1": 1}})]
    record = report.storm_record(parts, 3, 50, "default", {}, ("1.0", "1.2"))
    assert record["synced"] == 3 and record["missing"] == 0 and record["kept_up"] is True
    assert record["all_synced_s"] == pytest.approx(3.0, rel=0.01)
    assert record["refusals"] == {"503": 3, "429": 1} and record["refused"] == 4
    assert record["per_second"]["hello"] == [1, 1, 1]
    assert "all synced in 3.0 s" in record["note"] and "4 refusals" in record["note"]
    json.dumps(record)
    unsynced = report.storm_record([_storm_part(2, [1.0], {}, {})], 1, 5, "off", {},
                                   ("1", "1"))  # fmt: skip
    assert unsynced["missing"] == 1 and unsynced["all_synced_s"] is None
    assert unsynced["kept_up"] is False and "1 not synced" in unsynced["note"]


def test_node_admission_flag_and_shares() -> None:
    from bench.load.stack import NODE_ADMISSION, admission_env

    assert admission_env("off") == {}
    assert admission_env("default") == dict.fromkeys(NODE_ADMISSION)
    assert admission_env("150,300") == dict(zip(NODE_ADMISSION, ["150.0", "300"], strict=True))
    with pytest.raises(ValueError, match="RATE,BURST"):
        admission_env("fast")
    assert plans.split(10, 3) == [4, 3, 3] and plans.split(1, 2) == [1, 0]
