"""Prometheus metrics of the write path."""

from __future__ import annotations

from prometheus_client import Counter

SENDS = Counter(
    "messenger_sends_total",
    "Sends answered, by outcome: 'stored' (a new message) or 'replayed' (a retried "
    "client_msg_id answered with its original receipt).", ["outcome"])
ENTRIES_APPENDED = Counter(
    "messenger_fanout_entries_total",
    "Inbox entries written, one per inbox a new entry went into (a group message to 100 "
    "members counts 100), by kind.", ["kind"])
