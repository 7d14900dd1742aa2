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
