"""Push delivery counters, by provider, rendered in the Prometheus text format.

In-process and lock-free (one event loop updates them); ``GET /metrics`` concatenates
``render_prometheus()`` with the other components' metrics.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal, get_args

Counter = Literal["sent", "failed", "retried", "dead_lettered", "dropped_tokens"]

HELP: dict[Counter, str] = {
    "sent": "Pushes accepted by the provider.",
    "failed": "Push attempts the provider did not accept (any error, including timeouts).",
    "retried": "Push jobs re-scheduled for another attempt.",
    "dead_lettered": "Push jobs given up and moved to the dead-letter queue.",
    "dropped_tokens": "Device push tokens removed because the provider rejected them.",
}


def _escape(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class PushMetrics:
    """Monotonic counters ``<prefix>_<name>_total{provider="..."}``."""

    COUNTERS: tuple[Counter, ...] = get_args(Counter)

    def __init__(self, prefix: str = "messenger_push") -> None:
        self.prefix = prefix
        self._counts: dict[Counter, defaultdict[str, int]] = {
            name: defaultdict(int) for name in self.COUNTERS
        }

    def inc(self, name: Counter, provider: str, amount: int = 1) -> None:
        """Add ``amount`` (>= 0) to counter ``name`` for ``provider``."""
        if amount < 0:
            raise ValueError(f"counters only go up, got {amount}")
        self._counts[name][provider] += amount

    def get(self, name: Counter, provider: str) -> int:
        """The current value of counter ``name`` for ``provider`` (0 if never counted)."""
        return self._counts[name].get(provider, 0)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of every counter: ``{name: {provider: value}}``."""
        return {name: dict(values) for name, values in self._counts.items()}

    def render_prometheus(self) -> str:
        """The counters in the Prometheus text exposition format (with HELP and TYPE lines,
        providers sorted, ending in a newline)."""
        lines: list[str] = []
        for name in self.COUNTERS:
            metric = f"{self.prefix}_{name}_total"
            lines.append(f"# HELP {metric} {HELP[name]}")
            lines.append(f"# TYPE {metric} counter")
            for provider, value in sorted(self._counts[name].items()):
                lines.append(f'{metric}{{provider="{_escape(provider)}"}} {value}')
        return "\n".join(lines) + "\n"
