"""``python -m bench.load``: start (or point at) a server, run the chosen workloads, print a
table and write every record to a JSON file.

    python -m bench.load --mode embedded --workload w1 --rate 200
    python -m bench.load --mode production --workload all --out prod.json
    python -m bench.load --url http://127.0.0.1:8000 --workload w2 --rate 20

Without ``--rate``, W1, W1-REST and W2 sweep for their ceiling. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.load import procstat, report, stack
from bench.load.client import raise_nofile_limit
from bench.load.runner import Options, Runner
from bench.load.traffic import StepTiming

TRAFFIC = ("w1", "w1-rest", "w2")
WORKLOADS = (*TRAFFIC, "w3", "w3-cold", "idle", "storm", "raw")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["embedded", "production"], default="embedded")
    p.add_argument("--workload", nargs="+", choices=[*WORKLOADS, "all"], default=["w1"])
    p.add_argument("--rate", type=float, nargs="+",
                   help="messages/s per step for w1/w1-rest/w2 (no rate: sweep)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending per step")
    p.add_argument("--warmup", type=float, default=2.0, help="first seconds not measured")
    p.add_argument("--grace", type=float, default=10.0, help="wait for stragglers (s)")
    p.add_argument("--processes", type=int, default=2, help="load-generator processes")
    p.add_argument("--pairs", type=int, default=50, help="W1 pairs")
    p.add_argument("--group-size", type=int, default=100)
    p.add_argument("--online", type=int, default=50, help="W2 members with a socket")
    p.add_argument("--group-senders", type=int, default=2)
    p.add_argument("--body-bytes", type=int, default=100)
    p.add_argument("--sweep-start", type=float, help="first sweep rate (w1: 50, w2: 10 msg/s)")
    p.add_argument("--sweep-max", type=float, default=20_000.0)
    p.add_argument("--precision", type=float, default=0.15, help="sweep stops within this")
    p.add_argument("--backlog", type=int, nargs="+", default=[1000, 10_000])
    p.add_argument("--sockets", type=int, default=10_000, help="idle sockets")
    p.add_argument("--hold", type=float, default=30.0, help="idle hold (s)")
    p.add_argument("--raw-messages", type=int, default=1000, help="scale of the raw step")
    p.add_argument("--storm-sockets", type=int, default=5000, help="sockets of the storm")
    p.add_argument("--storm-users", type=int, default=100, help="users they cycle through")
    p.add_argument("--storm-backlog", type=int, default=50, help="entries each has to sync")
    p.add_argument("--storm-timeout", type=float, default=300.0, help="give up after (s)")
    p.add_argument("--node-admission", default="off", metavar="off|default|RATE,BURST",
                   help="the started server's upgrade admission per node: off (uncapped, "
                        "as every other limit), the server's default, or RATE,BURST")
    p.add_argument("--url", help="a running server instead of starting one")
    p.add_argument("--workers", type=int, default=1,
                   help="the started server's processes (messenger serve --workers)")
    p.add_argument("--server-root", type=Path, metavar="DIR",
                   help="run the started server from this checkout (e.g. a git worktree of "
                        "an older revision, to compare)")
    p.add_argument("--redis-url", help="its Redis (w3-cold, watching); production: use this")
    p.add_argument("--cassandra", help="HOST:PORT of its Cassandra; production: use this node")
    p.add_argument("--profile-dir", type=Path, help="py-spy the server during fixed-rate steps")
    p.add_argument("--profile-format", choices=["raw", "speedscope", "flamegraph"],
                   default="raw")
    p.add_argument("--out", type=Path, help="JSON file (default: in the temp dir)")
    return p


def options(args: argparse.Namespace) -> Options:
    starts = {"w2": 10.0}
    if args.sweep_start:
        starts = dict.fromkeys(TRAFFIC, args.sweep_start)
    return Options(
        processes=args.processes, duration=args.duration,
        timing=StepTiming(args.warmup, args.grace, args.body_bytes), pairs=args.pairs,
        group_size=args.group_size, online=args.online, group_senders=args.group_senders,
        sweep_start=starts, sweep_max=args.sweep_max, precision=args.precision,
        backlogs=tuple(args.backlog), sockets=args.sockets, hold=args.hold,
        profile_dir=args.profile_dir, profile_format=args.profile_format,
        raw_messages=args.raw_messages, storm_sockets=args.storm_sockets,
        storm_users=args.storm_users, storm_backlog=args.storm_backlog,
        storm_timeout=args.storm_timeout,
        admission="external" if args.url else args.node_admission,
    )  # fmt: skip


def workloads(chosen: list[str], mode: str) -> list[str]:
    """The workloads to run, in order; ``all`` is every one that fits the mode."""
    if "all" not in chosen:
        return chosen
    cold = ["w3-cold"] if mode == "production" else ["w3"]
    return [*TRAFFIC, *cold, "idle", *(["raw"] if mode == "production" else [])]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the command does except printing the table; the JSON document."""
    raise_nofile_limit()
    started = time.time()
    plan = workloads(args.workload, args.mode)
    with stack.running(args.mode, args.url, args.redis_url, args.cassandra,
                       stack.admission_env(args.node_admission), args.server_root,
                       args.workers) as target, \
            ProcessPoolExecutor(args.processes,
                                mp_context=multiprocessing.get_context("spawn")) as pool:
        print(f"{args.mode} server at {target.url}, watching {target.pids}; "
              f"load {procstat.load_average()}", flush=True)
        runner = Runner(target, options(args), pool)
        raw = None
        for workload in plan:
            if workload in TRAFFIC:
                if args.rate:
                    for rate in args.rate:
                        runner.traffic(workload, rate)
                else:
                    runner.sweep(workload)
            elif workload in ("w3", "w3-cold"):
                runner.backlog(cold=workload == "w3-cold")
            elif workload == "idle":
                runner.idle()
            elif workload == "storm":
                runner.storm()
            elif workload == "raw":
                raw = runner.raw()
    return {
        "meta": {"mode": args.mode, "started": started, "finished": time.time(),
                 "argv": sys.argv[1:], "cpus": os.cpu_count(), "python": platform.python_version(),
                 "url": target.url, "pids": target.pids, "workloads": plan,
                 "load_end": procstat.load_average()},
        "steps": runner.records, "sweeps": runner.sweeps, "raw": raw,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    document = run(args)
    out = args.out or Path(tempfile.gettempdir()) / (
        f"bench-load-{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.write_text(json.dumps(document, indent=1, default=str))
    print()
    print(report.render(document["steps"]))
    for workload, sweep in document["sweeps"].items():
        print(f"{workload}: ceiling {sweep['ceiling_msgs_per_s']} msg/s "
              f"({sweep['ceiling_deliveries_per_s']} deliveries/s)")
    if document["raw"]:
        for group, cases in document["raw"].items():
            if isinstance(cases, dict):
                for case, sample in cases.items():
                    print(f"raw {group} {case}: {sample['rate']:,.0f} {sample['unit']}")
    print(f"JSON: {out}")
