"""What operators see: the Prometheus metrics after real traffic, and the start-up line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api.backends import JWT_SECRET
from tests.api.server import MessengerProcess, new_account
from tests.api.wsclient import collect_entries, next_frame, open_ws


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and label set."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_sends_syncs_frames_and_store_calls(
    server: MessengerProcess, client: httpx.Client
) -> None:
    http = httpx.AsyncClient(base_url=server.url, timeout=30)
    before = samples((await http.get("/metrics")).text)
    alice, bob = new_account(client), new_account(client)
    ws = await open_ws(server.ws_url, bob)
    for status in (201, 200):  # the second is a replay
        r = await http.post("/v1/messages", headers=alice.headers, json={
            "to_user": bob.user_id, "body": "one", "client_msg_id": "m-1"})
        assert r.status_code == status, r.text
    await collect_entries(ws, 1)
    await ws.send(json.dumps({"op": "sync", "cur_max_msg_id": "0"}))
    await ws.send(json.dumps({"op": "ack", "cur_max_msg_id": "1"}))
    await ws.send(json.dumps({"op": "no-such-op"}))
    await ws.send("not json")
    await next_frame(ws, "error")
    await next_frame(ws, "error")
    assert (await http.get("/v1/sync", headers=bob.headers)).status_code == 200
    assert (await http.post("/v1/sync/ack", json={"cur_max_msg_id": "1"},
                            headers=bob.headers)).status_code == 200
    assert (await http.get("/v1/no/such/path")).status_code == 404

    response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    await ws.close()
    await http.aclose()

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) >= by

    assert grew("messenger_http_requests_total", 1, method="POST", route="/v1/messages",
                status="201")
    assert grew("messenger_http_requests_total", 1, method="POST", route="/v1/messages",
                status="200")
    assert grew("messenger_http_requests_total", 1, method="GET", route="unmatched",
                status="404")
    assert grew("messenger_http_request_duration_seconds_count", 2, method="POST",
                route="/v1/messages")
    assert grew("messenger_sends_total", 1, outcome="stored")
    assert grew("messenger_sends_total", 1, outcome="replayed")
    assert grew("messenger_fanout_entries_total", 2, kind="message")  # Alice's and Bob's
    for transport in ("rest", "ws"):
        assert grew("messenger_syncs_total", 1, transport=transport)
        assert grew("messenger_acks_total", 1, transport=transport)
    assert grew("messenger_ws_frames_received_total", 1, op="sync")
    assert grew("messenger_ws_frames_received_total", 1, op="unknown")
    assert grew("messenger_ws_frames_received_total", 1, op="invalid")
    assert grew("messenger_ws_frames_sent_total", 1, op="hello")
    assert grew("messenger_ws_frames_sent_total", 1, op="entries")
    assert value(after, "messenger_ws_connections") >= 1
    inbox_backend = "sqlite" if "MESSENGER_REDIS_URL" not in server.env else "redis+cassandra"
    assert grew("messenger_store_operation_seconds_count", 1, backend=inbox_backend,
                store="inbox", operation="append_many")
    for gauge in ("messenger_push_queue_depth", "messenger_push_queue_oldest_job_age_seconds",
                  "messenger_push_dead_letters", "messenger_ws_slow_reader_disconnects_total"):
        assert (gauge, frozenset()) in after, gauge
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "process_cpu_seconds_total") > 0


def test_the_start_up_line_names_mode_data_url_and_secret_origin(
    tmp_path: Path, backend_env: dict[str, str]
) -> None:
    node = MessengerProcess(tmp_path / "data", backend_env, log_level="info")
    node.start()
    node.stop()
    log = node.log_path.read_text()
    [line] = [line for line in log.splitlines() if "Inbox Messenger:" in line]
    assert f"listening on http://127.0.0.1:{node.port}" in line
    if backend_env:
        assert "production mode" in line and backend_env["MESSENGER_CASSANDRA_KEYSPACE"] in line
        assert "JWT secret from MESSENGER_JWT_SECRET" in line
        assert JWT_SECRET not in log
    else:
        assert "embedded mode" in line and str(node.data_dir.resolve()) in line
        secret_file = node.data_dir / "jwt-secret"
        assert re.search(f"JWT secret from {re.escape(str(secret_file))}", line)
        assert secret_file.read_text().strip() not in log

