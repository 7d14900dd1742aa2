"""Push delivery counters, by provider.

``PushMetrics`` keeps the counts of one set of workers (tests and ``messenger push-worker``
read them back) and adds every increment to the process's Prometheus counters
``messenger_push_<name>_total{provider}``, which ``GET /metrics`` exposes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal, get_args

from prometheus_client import Counter as PromCounter

Counter = Literal["sent", "failed", "retried", "dead_lettered", "dropped_tokens"]

HELP: dict[Counter, str] = {
    "sent": "Pushes accepted by the provider.",
    "failed": "Push attempts the provider did not accept (any error, including timeouts).",
    "retried": "Push jobs re-scheduled for another attempt.",
    "dead_lettered": "Push jobs given up and moved to the dead-letter queue.",
    "dropped_tokens": "Device push tokens removed because the provider rejected them.",
}

PROMETHEUS: dict[Counter, PromCounter] = {
    name: PromCounter(f"messenger_push_{name}_total", HELP[name], ["provider"])
    for name in get_args(Counter)
}


class PushMetrics:
    """Monotonic counters by name and provider."""

    COUNTERS: tuple[Counter, ...] = get_args(Counter)

    def __init__(self) -> None:
        self._counts: dict[Counter, defaultdict[str, int]] = {
            name: defaultdict(int) for name in self.COUNTERS
        }

    def inc(self, name: Counter, provider: str, amount: int = 1) -> None:
        """Add ``amount`` (>= 0) to counter ``name`` for ``provider``."""
        if amount < 0:
            raise ValueError(f"counters only go up, got {amount}")
        self._counts[name][provider] += amount
        PROMETHEUS[name].labels(provider).inc(amount)

    def get(self, name: Counter, provider: str) -> int:
        """The current value of counter ``name`` for ``provider`` (0 if never counted)."""
        return self._counts[name].get(provider, 0)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of every counter: ``{name: {provider: value}}``."""
        return {name: dict(values) for name, values in self._counts.items()}

UNACKED_JOBS = PromCounter(
    "messenger_push_unacked_jobs_total",
    "Push jobs queued for live deliveries not acked within the ack window, or left un-acked "
    "by a socket that closed (new jobs only: one the append-time planning queued is not "
    "queued again).")
