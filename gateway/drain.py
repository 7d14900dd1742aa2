"""When each socket of a draining node should come back: reconnect delays spread evenly over
a window. No I/O.

Drawing each delay uniformly from the window would bunch some of them (with a few hundred
sockets, some 100 ms slices of a 2 s window get twice their share); instead the window is cut
into one slice per socket, each socket gets a random point of its own slice, and the slices
are dealt out at random. Reconnects then arrive at a steady ``count / window`` per second,
and no two clients share a schedule.
"""

from __future__ import annotations

import random


def reconnect_delays(count: int, window_ms: int, rng: random.Random) -> list[int]:
    """``count`` delays in milliseconds within ``[0, window_ms]``, one per equal slice of the
    window, in random order."""
    if count <= 0:
        return []
    width = window_ms / count
    delays = [int((slot + rng.random()) * width) for slot in range(count)]
    rng.shuffle(delays)
    return delays
