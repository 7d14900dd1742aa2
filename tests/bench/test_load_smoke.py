"""A tiny W1 step through the whole tool: its own embedded server, two load-generator
processes, a JSON report in which every message arrived."""

from __future__ import annotations

import json
from pathlib import Path

from bench.load.cli import main


def test_tiny_w1_step_against_a_real_embedded_server(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    main(["--mode", "embedded", "--workload", "w1", "--rate", "20", "--duration", "1.5",
          "--warmup", "0.5", "--grace", "5", "--pairs", "2", "--processes", "2",
          "--out", str(out)])  # fmt: skip
    document = json.loads(out.read_text())
    assert document["meta"]["mode"] == "embedded" and "server" in document["meta"]["pids"]
    (step,) = document["steps"]
    assert step["sent"] == 30 and step["acked"] == 30 and step["expected"] == 30
    assert step["received"] == 30 and step["missing"] == 0 and step["duplicates"] == 0
    assert step["errors"] == {} and step["kept_up"] is True
    latency = step["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 5000
    assert step["procs"]["server"]["cpu_cores"] > 0 and step["procs"]["server"]["rss_mib"] > 10


def test_tiny_storm_against_a_node_admitting_few_at_a_time(tmp_path: Path) -> None:
    """Sockets more than the node admits at once: the rest are refused (503) and come back
    when told, and every socket syncs its backlog."""
    out = tmp_path / "storm.json"
    main(["--mode", "embedded", "--workload", "storm", "--storm-sockets", "60",
          "--storm-users", "4", "--storm-backlog", "3", "--storm-timeout", "60",
          "--node-admission", "30,20", "--processes", "2", "--out", str(out)])  # fmt: skip
    (step,) = json.loads(out.read_text())["steps"]
    assert step["kind"] == "storm" and step["admission"] == "30,20"
    assert step["synced"] == 60 and step["missing"] == 0 and step["errors"] == {}
    assert step["refusals"].get("503", 0) >= 10  # past the burst (and what refilled meanwhile)
    assert step["entries"] >= 60 * 3 and step["all_synced_s"] < 30
