"""The open-loop send plan and the body that carries each send's due time. No I/O.

Message ``k`` is due at ``start + k / rate`` and sent by sender ``k % senders``: round robin, so
every sender sends at ``rate / senders`` and the sends are spread evenly over time. Its body
holds the run's tag, ``k`` and the due time (Unix seconds), so whoever receives it can tell the
latency from the due time without asking the sender, across processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Schedule:
    """``rate`` messages/s for ``duration`` s from ``start`` (Unix s), over ``senders``."""

    rate: float
    duration: float
    senders: int
    start: float = 0.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration <= 0 or self.senders < 1:
            raise ValueError("a schedule needs rate > 0, duration > 0 and at least one sender")

    @property
    def count(self) -> int:
        """How many messages the plan holds: those due before ``start + duration``."""
        return math.ceil(self.rate * self.duration - 1e-9)

    @property
    def end(self) -> float:
        """When the plan's sending ends."""
        return self.start + self.duration

    def due(self, k: int) -> float:
        """The time message ``k`` is due."""
        return self.start + k / self.rate

    def sender(self, k: int) -> int:
        """The sender of message ``k``."""
        return k % self.senders

    def messages_of(self, senders: frozenset[int]) -> Iterator[int]:
        """The messages sent by ``senders``, in due order."""
        first = sorted(s for s in senders if 0 <= s < self.senders)
        for base in range(0, self.count, self.senders):
            for s in first:
                if base + s < self.count:
                    yield base + s


def encode_body(tag: str, k: int, due: float, size: int = 0) -> str:
    """``<tag>:<k>:<due>:`` padded with dots to ``size`` characters."""
    text = f"{tag}:{k}:{due:.6f}:"
    return text + "." * max(0, size - len(text))


def parse_body(body: object, tag: str) -> tuple[int, float] | None:
    """``(k, due)`` from a body written by ``encode_body`` with ``tag``; None for any other."""
    if not isinstance(body, str) or not body.startswith(tag + ":"):
        return None
    parts = body.split(":", 3)
    if len(parts) < 4:
        return None
    try:
        return int(parts[1]), float(parts[2])
    except ValueError:
        return None


def client_msg_id(tag: str, k: int) -> str:
    """The idempotency key of message ``k`` (its ``sent`` reply echoes it)."""
    return f"{tag}-{k}"


def parse_client_msg_id(value: object, tag: str) -> int | None:
    """``k`` back from ``client_msg_id``; None for another run's or another client's key."""
    if not isinstance(value, str) or not value.startswith(tag + "-"):
        return None
    rest = value[len(tag) + 1:]
    return int(rest) if rest.isdigit() else None
