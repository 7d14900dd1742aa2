"""Runs the workloads' steps against a ``Target``: set-up, the processes' jobs, /proc sampling
around each step, and one record per step (``report``)."""

from __future__ import annotations

import asyncio
import multiprocessing
import secrets
import statistics
import subprocess
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

from bench.load import client, plans, procstat, report
from bench.load.backlog import BacklogJob, run_backlog
from bench.load.ceiling import CeilingSearch
from bench.load.client import Member
from bench.load.histogram import Histogram, merged
from bench.load.idle import IdleJob, run_idle
from bench.load.raw import run_raw
from bench.load.schedule import Schedule
from bench.load.stack import Target
from bench.load.storm import StormJob, prepare, run_storm
from bench.load.traffic import StepTiming, TrafficJob, run_traffic

START_LEAD_S = 3.0  # the processes get this long to open their sockets before the first send
STORM_LEAD_S = 5.0  # ... and to start, before the storm's instant
QUIET_CORES = 0.15  # the server counts as settled below this CPU use


@dataclass(frozen=True)
class Options:
    """Every knob of a run (see ``cli``)."""

    processes: int = 2
    duration: float = 10.0
    timing: StepTiming = StepTiming()
    pairs: int = 50
    group_size: int = 100
    online: int = 50
    group_senders: int = 2
    sweep_start: dict[str, float] = field(default_factory=lambda: {"w2": 10.0})
    sweep_max: float = 20_000.0
    precision: float = 0.15
    backlogs: tuple[int, ...] = (1000, 10_000)
    sockets: int = 10_000
    hold: float = 30.0
    open_concurrency: int = 50
    settle_s: float = 20.0
    profile_dir: Path | None = None
    profile_format: str = "raw"
    raw_messages: int = 1000
    storm_sockets: int = 5000
    storm_users: int = 100
    storm_backlog: int = 50
    storm_timeout: float = 300.0
    admission: str = "off"


class Runner:
    """One run's state: the target, the process pool, the members made, the records."""

    def __init__(self, target: Target, options: Options, pool: Executor) -> None:
        self.target = target
        self.options = options
        self.pool = pool
        self.records: list[dict[str, Any]] = []
        self.sweeps: dict[str, dict[str, Any]] = {}
        self._members: list[Member] = []
        self._group: str | None = None

    # ---- set-up ---------------------------------------------------------------------------

    def members(self, count: int) -> list[Member]:
        """At least ``count`` members, made on first need and reused by every workload."""
        if len(self._members) < count:
            made = asyncio.run(client.new_members(self.target.url, count - len(self._members)))
            self._members += made
        return self._members[:count]

    def group(self) -> str:
        """The W2 group (made once) of the first ``group_size`` members."""
        if self._group is None:
            members = self.members(self.options.group_size)
            self._group = asyncio.run(client.new_group(self.target.url, members[0], members[1:]))
        return self._group

    # ---- steps ----------------------------------------------------------------------------

    def traffic(self, workload: str, rate: float) -> dict[str, Any]:
        """One step of W1 (``w1``, ``w1-rest``) or W2 (``w2``) at ``rate`` messages/s."""
        o = self.options
        tag = f"lg{secrets.token_hex(4)}"
        senders, fanout = ((o.group_senders, o.online) if workload == "w2"
                           else (2 * o.pairs, 1))  # fmt: skip
        self.members(o.group_size if workload == "w2" else 2 * o.pairs)
        if workload == "w2":
            self.group()
        settled = self.settle()
        schedule = Schedule(rate, o.duration, senders, time.time() + START_LEAD_S)
        jobs = self._traffic_jobs(workload, schedule, tag)
        name = f"{workload} {rate:g} msg/s"
        with self.sampling() as sampler:
            load_before = procstat.load_average()
            futures = [self.pool.submit(run_traffic, job) for job in jobs]
            profile = self._profile(f"{workload}-{rate:g}", schedule.start + o.timing.warmup)
            parts = [future.result() for future in futures]
            if profile is not None:
                profile.wait()
            t0, t1 = schedule.start + o.timing.warmup, schedule.end
        totals = report.combine(parts)
        record = report.traffic_record(name, workload, rate, fanout, t1 - t0, totals,
                                       sampler.usage(t0, t1),
                                       (load_before, procstat.load_average()))  # fmt: skip
        record["settle_wait_s"] = settled
        return self._add(record)

    def _traffic_jobs(self, workload: str, schedule: Schedule, tag: str) -> list[TrafficJob]:
        o, url, ws_url = self.options, self.target.url, self.target.ws_url
        if workload == "w2":
            online, group_id = self.members(o.group_size)[:o.online], self.group()
            return plans.w2_jobs(online, group_id, o.processes, schedule, tag=tag, base_url=url,
                                 ws_url=ws_url, timing=o.timing)  # fmt: skip
        via = "rest" if workload == "w1-rest" else "ws"
        return plans.w1_jobs(self.members(2 * o.pairs), o.pairs, o.processes, schedule, via=via,
                             tag=tag, base_url=url, ws_url=ws_url, timing=o.timing)  # fmt: skip

    def sweep(self, workload: str) -> float | None:
        """Double the rate while steps keep up, then bisect; the ceiling (messages/s)."""
        o = self.options
        search = CeilingSearch(o.sweep_start.get(workload, 50.0), precision=o.precision,
                               max_rate=o.sweep_max)  # fmt: skip
        while (rate := search.next_rate()) is not None:
            record = self.traffic(workload, rate)
            search.record(rate, bool(record["kept_up"]))
        fanout = o.online if workload == "w2" else 1
        ceiling = search.ceiling
        self.sweeps[workload] = {
            "ceiling_msgs_per_s": ceiling,
            "ceiling_deliveries_per_s": ceiling * fanout if ceiling else None,
            "lowest_failure_msgs_per_s": search.lowest_failure,
            "steps": [{"rate": r, "kept_up": ok} for r, ok in search.results],
        }  # fmt: skip
        print(f"{workload} ceiling: {ceiling} msg/s (lowest failing "
              f"{search.lowest_failure})", flush=True)
        return ceiling

    def backlog(self, cold: bool) -> None:
        """W3 for each backlog size: build, then catch up hot (and cold)."""
        o = self.options
        redis_url = self.target.redis_url
        if cold and redis_url is None:
            self._add({"name": "w3-cold", "kind": "backlog", "note": "skipped: no Redis (the "
                       "embedded store has a single tier)"})  # fmt: skip
            return
        senders = tuple(self.members(4))
        for size in o.backlogs:
            recipient = asyncio.run(client.new_members(self.target.url, 1, "lgr"))[0]
            job = BacklogJob(self.target.ws_url, f"lg{secrets.token_hex(4)}", recipient,
                             senders, size, redis_url if cold else None,
                             body_bytes=o.timing.body_bytes)  # fmt: skip
            self.settle()
            with self.sampling() as sampler:
                load_before = procstat.load_average()
                result = self.pool.submit(run_backlog, job).result()
            if not cold:
                result["phases"] = result["phases"][:1]
            build = sampler.usage(result["build_start"], result["build_end"])
            for phase in result["phases"]:
                self._add({
                    "name": f"w3 {size} {phase['name']}", "kind": "backlog", "size": size,
                    "phase": phase["name"], "catch_up_s": round(phase["seconds"], 3),
                    "connect_s": round(phase["connect_s"], 3), "entries": phase["entries"],
                    "missing": size - phase["entries"], "frames": phase["frames"],
                    "entries_per_s": round(phase["entries_per_s"], 1),
                    "achieved_per_s": round(phase["entries_per_s"], 1),
                    "stream_len_before": phase["stream_len_before"],
                    "build_s": round(result["build_s"], 2),
                    "build_msgs_per_s": round(size / result["build_s"], 1),
                    "build_procs": build, "errors": result["errors"],
                    "kept_up": phase["entries"] == size and not result["errors"],
                    "latency_ms": {"max": round(phase["seconds"] * 1000, 1)},
                    "procs": sampler.usage(phase["start"], phase["end"]),
                    "load_before": load_before, "load_after": procstat.load_average(),
                    "note": f"caught up in {phase['seconds']:.2f} s (build "
                            f"{size / result['build_s']:.0f} msg/s)",
                })  # fmt: skip

    def idle(self) -> dict[str, Any]:
        """N sockets opened, held for ``hold`` s, closed: open rate and server RSS per socket."""
        o = self.options
        members = tuple(self.members(min(100, max(2 * o.pairs, 2))))
        shares = plans.split(o.sockets, o.processes)
        self.settle()
        with self.sampling() as sampler, self.manager() as manager:
            load_before = procstat.load_average()
            barrier = manager.Barrier(sum(1 for share in shares if share))
            futures = [self.pool.submit(run_idle, IdleJob(self.target.ws_url, members, share,
                                                          o.hold, barrier, o.open_concurrency))
                       for share in shares if share]  # fmt: skip
            parts = [future.result() for future in futures]
        opened = sum(p["opened"] for p in parts)
        open_start = min(p["open_start"] for p in parts)
        open_end = max(p["open_end"] for p in parts)
        held_from = max(p["hold_start"] for p in parts) + 0.5
        hold_until = min(p["hold_end"] for p in parts)
        server = sampler.series.get("server", [])
        before = ([s.rss for s in server if s.t <= open_start] or [server[0].rss]) if server else []
        held = [s.rss for s in server if held_from <= s.t <= hold_until]
        per_socket = ((statistics.median(held) - before[-1]) / opened / 1024
                      if held and before and opened else None)  # fmt: skip
        open_hist = merged([Histogram.from_json(p["open"]) for p in parts])
        errors: dict[str, int] = {}
        for p in parts:
            for key, n in p["errors"].items():
                errors[key] = errors.get(key, 0) + n
        open_rate = opened / (open_end - open_start) if open_end > open_start else 0.0
        return self._add({
            "name": f"idle {o.sockets} sockets", "kind": "idle", "sockets": o.sockets,
            "opened": opened, "dropped": sum(p["dropped"] for p in parts),
            "missing": o.sockets - opened, "errors": errors,
            "kept_up": opened == o.sockets and not errors,
            "offered_per_s": None, "achieved_per_s": round(open_rate, 1),
            "open_rate_per_s": round(open_rate, 1), "open_s": round(open_end - open_start, 2),
            "latency_ms": report.latency_ms(open_hist),
            "server_rss_kib_per_socket": round(per_socket, 1) if per_socket else None,
            "held_from": held_from, "held_until": hold_until,
            "procs": sampler.usage(held_from, hold_until), "procs_open": sampler.usage(
                open_start, open_end),
            "client_cpu_s": round(sum(p["client_cpu_s"] for p in parts), 2),
            "load_before": load_before, "load_after": procstat.load_average(),
            "note": f"{open_rate:.0f} opens/s, "
                    + (f"{per_socket:.1f} KiB/socket" if per_socket else "RSS n/a"),
        })  # fmt: skip

    def storm(self) -> dict[str, Any]:
        """``storm_sockets`` sockets reconnecting at one instant, each with a backlog: time
        until all are synced, sync-time percentiles, refusals."""
        o = self.options
        targets = tuple(asyncio.run(prepare(self.target.url, self.members(o.storm_users),
                                            o.storm_backlog)))
        shares = [share for share in plans.split(o.storm_sockets, o.processes) if share]
        self.settle()
        with self.sampling() as sampler, self.manager() as manager:
            load_before = procstat.load_average()
            barrier = manager.Barrier(len(shares))
            start_at = time.time() + STORM_LEAD_S
            firsts = [sum(shares[:n]) for n in range(len(shares))]
            futures = [self.pool.submit(run_storm, StormJob(
                self.target.ws_url, targets, first, share, start_at, o.storm_timeout, barrier))
                for first, share in zip(firsts, shares, strict=True)]  # fmt: skip
            parts = [future.result() for future in futures]
        end = max((p["last_synced"] for p in parts), default=0.0) or time.time()
        return self._add(report.storm_record(
            parts, o.storm_users, o.storm_backlog, o.admission,
            sampler.usage(start_at, end), (load_before, procstat.load_average())))

    def raw(self) -> dict[str, Any] | None:
        """``bench_append``'s raw store limits against the same Redis and Cassandra."""
        if self.target.redis_url is None or self.target.cassandra is None:
            return None
        self.settle()
        load = procstat.load_average()
        result = self.pool.submit(run_raw, self.target.redis_url, self.target.cassandra,
                                  self.options.raw_messages).result()  # fmt: skip
        return {"load_before": load, "load_after": procstat.load_average(), **result}

    # ---- helpers --------------------------------------------------------------------------

    def manager(self) -> SyncManager:
        """A manager for objects the pool's processes share (the idle barrier)."""
        return multiprocessing.get_context("spawn").Manager()

    def sampling(self) -> _Sampling:
        return _Sampling(procstat.Sampler(self.target.pids))

    def settle(self) -> float:
        """Wait (up to ``settle_s``) until the server is nearly idle; the time waited."""
        pid = self.target.pids.get("server")
        started = time.time()
        while pid is not None and time.time() - started < self.options.settle_s:
            a = procstat.read(pid)
            time.sleep(1.0)
            b = procstat.read(pid)
            if a is None or b is None or (b.cpu_s - a.cpu_s) / (b.t - a.t) < QUIET_CORES:
                break
        return round(time.time() - started, 1)

    def _profile(self, name: str, at: float) -> subprocess.Popen[bytes] | None:
        """py-spy on the server for the measured part of the step, if asked for."""
        directory, pid = self.options.profile_dir, self.target.pids.get("server")
        if directory is None or pid is None:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        seconds = max(1, int(self.options.duration - self.options.timing.warmup))
        ext = {"raw": "txt", "speedscope": "json", "flamegraph": "svg"}[self.options.profile_format]
        path = directory / f"{self.target.mode}-{name}.{ext}"
        time.sleep(max(0.0, at - time.time()))
        return subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100",
             "--nonblocking", "--format", self.options.profile_format, "-o", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def _add(self, record: dict[str, Any]) -> dict[str, Any]:
        record.setdefault("mode", self.target.mode)
        self.records.append(record)
        print(report.render([record]).splitlines()[-1], flush=True)
        return record


class _Sampling:
    """``with runner.sampling() as sampler``: /proc samples of the watched processes."""

    def __init__(self, sampler: procstat.Sampler) -> None:
        self.sampler = sampler

    def __enter__(self) -> procstat.Sampler:
        return self.sampler.start()

    def __exit__(self, *exc: object) -> None:
        self.sampler.stop()

