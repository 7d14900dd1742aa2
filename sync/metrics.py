"""Prometheus metrics of the read path."""

from __future__ import annotations

from prometheus_client import Counter

SYNCS = Counter(
    "messenger_syncs_total",
    "Sync requests: REST pages and WebSocket 'sync' ops, by transport.", ["transport"])
ACKS = Counter(
    "messenger_acks_total", "Cursor acknowledgements, by transport.", ["transport"])
