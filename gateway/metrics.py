"""Prometheus metrics of the WebSocket gateway."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from gateway.frames import CLIENT_OPS

WS_CONNECTIONS = Gauge("messenger_ws_connections", "WebSocket connections open on this node.")
FRAMES_RECEIVED = Counter(
    "messenger_ws_frames_received_total",
    "Client frames received, by op ('invalid' for frames that could not be parsed, "
    "'unknown' for ops the server does not serve).", ["op"])
FRAMES_SENT = Counter(
    "messenger_ws_frames_sent_total", "Frames queued to clients, by op.", ["op"])
SLOW_READER_DROPS = Counter(
    "messenger_ws_slow_reader_disconnects_total",
    "Connections closed (1013) because their send queue was full.")
UPGRADES_REFUSED = Counter(
    "messenger_ws_upgrades_refused_total",
    "WebSocket upgrades refused, by error code ('overloaded': the node's admission limit, "
    "'draining': the node is shutting down, 'rate_limited': the address's limit...).",
    ["code"])
WS_CLOSES = Counter(
    "messenger_ws_closes_total", "Connections the server closed, by close code.", ["code"])


def received(op: str | None) -> None:
    """Count one client frame; ops are a closed set, so a client cannot mint labels."""
    label = "invalid" if op is None else op if op in CLIENT_OPS else "unknown"
    FRAMES_RECEIVED.labels(label).inc()
