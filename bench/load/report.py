"""Turning the processes' results into one record per step, and records into a table. No I/O.

A record is a flat JSON object: the step's name and kind, offered and achieved rates,
latency percentiles (ms, from each send's due time), the checks (missing, duplicates, errors,
kept up), CPU (cores = user + sys seconds per wall second) and RSS of the server, Redis and
Cassandra over the step, the load generator's own CPU, and the machine's load average.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.load.ceiling import verdict
from bench.load.histogram import Histogram, merged

Usage = dict[str, dict[str, float] | None]


def _ms(seconds: float | int | None) -> float | None:
    return None if seconds is None else round(float(seconds) * 1000, 2)


def latency_ms(hist: Histogram) -> dict[str, float | None]:
    """p50/p95/p99/max/mean of a histogram, in ms."""
    summary = hist.summary()
    return {key: _ms(summary[key]) for key in ("p50", "p95", "p99", "max", "mean")}


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up the processes' results of one traffic step (counts, errors, histograms)."""
    out: dict[str, Any] = {}
    for key in ("sockets", "sent", "acked", "expected", "received", "expected_measured",
                "received_measured", "in_window", "duplicates", "client_cpu_s"):
        out[key] = sum(part[key] for part in parts)
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part["errors"])
    out["errors"] = dict(errors)
    out["last_receive"] = max((part["last_receive"] for part in parts), default=0.0)
    out["missing_sample"] = [m for part in parts for m in part.get("missing_sample", [])][:10]
    out["ready_late_s"] = max((part["ready_late_s"] for part in parts), default=0.0)
    for key in ("latency", "ack", "lateness"):
        out[key] = merged([Histogram.from_json(part[key]) for part in parts])
    return out


def traffic_record(name: str, workload: str, rate: float, fanout: int, window_s: float,
                   totals: dict[str, Any], usage: Usage, load: tuple[str, str],
                   ) -> dict[str, Any]:  # fmt: skip
    """The record of one W1/W1-REST/W2 step from ``combine``'s totals.

    ``window_s`` is the measured part of the step (after warm-up): achieved throughput is the
    deliveries that landed in it per second.
    """
    latency: Histogram = totals["latency"]
    errors = sum(totals["errors"].values())
    achieved = totals["in_window"] / window_s if window_s > 0 else 0.0
    ok, reasons = verdict(totals["expected"], totals["received"], errors,
                          latency.percentile(99), offered=rate * fanout, achieved=achieved)
    if totals["duplicates"]:
        ok, reasons = False, [*reasons, f"{totals['duplicates']} duplicates"]
    return {
        "name": name, "kind": "traffic", "workload": workload, "rate": rate, "fanout": fanout,
        "offered_msgs_per_s": rate, "offered_per_s": rate * fanout,
        "achieved_per_s": round(achieved, 1), "achieved_msgs_per_s": round(achieved / fanout, 1),
        "unit": "deliveries", "sockets": totals["sockets"], "sent": totals["sent"],
        "acked": totals["acked"],
        "expected": totals["expected"], "received": totals["received"],
        "missing": totals["expected"] - totals["received"], "duplicates": totals["duplicates"],
        "missing_sample": totals["missing_sample"],
        "errors": totals["errors"], "kept_up": ok, "reasons": reasons,
        "latency_ms": latency_ms(latency), "ack_ms": latency_ms(totals["ack"]),
        "client_lateness_p99_ms": _ms(totals["lateness"].percentile(99)),
        "client_ready_late_s": round(totals["ready_late_s"], 3),
        "client_cpu_s": round(totals["client_cpu_s"], 2), "procs": usage,
        "load_before": load[0], "load_after": load[1],
    }  # fmt: skip


def storm_record(parts: list[dict[str, Any]], users: int, backlog: int, admission: str,
                 usage: Usage, load: tuple[str, str]) -> dict[str, Any]:
    """The record of a storm from its processes' results: the table's latency columns are the
    sockets' sync times (from the storm's instant until caught up)."""
    sockets = sum(p["sockets"] for p in parts)
    synced = merged([Histogram.from_json(p["sync"]) for p in parts])
    hello = merged([Histogram.from_json(p["hello"]) for p in parts])
    refusals: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for part in parts:
        refusals.update(part["refusals"])
        errors.update(part["errors"])
    per_second: dict[str, Counter[int]] = {}
    for part in parts:
        for what, counts in part["per_second"].items():
            per_second.setdefault(what, Counter()).update(
                {int(second): n for second, n in counts.items()})
    all_synced = synced.high if synced.count == sockets and sockets else None
    p99 = synced.percentile(99)
    refused = sum(refusals.values())
    return {
        "name": f"storm {sockets} sockets", "kind": "storm", "sockets": sockets,
        "users": users, "backlog": backlog, "admission": admission,
        "synced": synced.count, "missing": sockets - synced.count,
        "all_synced_s": None if all_synced is None else round(all_synced, 2),
        "sync_p99_s": None if p99 is None else round(p99, 2),
        "refusals": dict(refusals), "refused": refused,
        "attempts": sum(p["attempts"] for p in parts),
        "entries": sum(p["entries"] for p in parts), "errors": dict(errors),
        "kept_up": synced.count == sockets, "offered_per_s": None,
        "achieved_per_s": round(sockets / all_synced, 1) if all_synced else None,
        "latency_ms": latency_ms(synced), "hello_ms": latency_ms(hello),
        "peak_per_s": {what: max(counts.values(), default=0)
                       for what, counts in per_second.items()},
        "per_second": {what: [counts.get(s, 0) for s in range(max(counts, default=-1) + 1)]
                       for what, counts in per_second.items()},
        "client_late_s": round(max((p["client_late_s"] for p in parts), default=0.0), 3),
        "client_cpu_s": round(sum(p["client_cpu_s"] for p in parts), 2), "procs": usage,
        "load_before": load[0], "load_after": load[1],
        "note": (f"all synced in {all_synced:.1f} s" if all_synced is not None
                 else f"{sockets - synced.count} not synced")
                + (f", p99 {p99:.1f} s" if p99 is not None else "")
                + f", {refused} refusals (admission {admission})",
    }  # fmt: skip


def _fmt(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}"


def _proc(usage: dict[str, float] | None) -> str:
    if not usage:
        return "-"
    return f"{usage['cpu_cores']:.2f}c/{usage['rss_mib']:.0f}M"


COLUMNS = ("step", "offered/s", "achieved/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
           "miss/err", "ok", "server", "redis", "cassandra", "load", "note")  # fmt: skip


def row(record: dict[str, Any]) -> list[str]:
    """One record's cells under ``COLUMNS``."""
    lat = record.get("latency_ms") or {}
    procs = record.get("procs") or {}
    errors = sum((record.get("errors") or {}).values())
    ok = record.get("kept_up")
    return [
        record["name"], _fmt(record.get("offered_per_s")), _fmt(record.get("achieved_per_s")),
        _fmt(lat.get("p50"), 1), _fmt(lat.get("p95"), 1), _fmt(lat.get("p99"), 1),
        _fmt(lat.get("max"), 1), f"{record.get('missing', 0)}/{errors}",
        "-" if ok is None else ("yes" if ok else "NO"), _proc(procs.get("server")),
        _proc(procs.get("redis")), _proc(procs.get("cassandra")),
        str(record.get("load_after", "")), str(record.get("note", "")),
    ]  # fmt: skip


def render(records: list[dict[str, Any]]) -> str:
    """A plain-text table of the records (server/redis/cassandra as cores/RSS)."""
    rows = [list(COLUMNS), *(row(r) for r in records)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
