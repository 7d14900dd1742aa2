"""Reconnect delays of a draining node's sockets: spread evenly over the window. No I/O."""

from __future__ import annotations

import random
from collections import Counter

from gateway.drain import reconnect_delays


def test_each_equal_slice_of_the_window_gets_one_delay_in_random_order() -> None:
    delays = reconnect_delays(400, 2000, random.Random(1))
    assert len(delays) == 400
    assert all(0 <= d <= 2000 for d in delays)
    assert sorted(d * 400 // 2000 for d in delays) == list(range(400))  # one per 5 ms slice
    assert delays != sorted(delays)  # dealt out at random, not by arrival order


def test_reconnects_arrive_at_an_even_rate_where_uniform_draws_bunch() -> None:
    """Per 100 ms of a 2 s window, 400 sockets make 20 reconnects each; independent uniform
    draws put markedly more into some slices."""
    per_slice = Counter(d // 100 for d in reconnect_delays(400, 2000, random.Random(2)))
    assert max(per_slice.values()) <= 20
    rng = random.Random(5)
    uniform = Counter(int(rng.uniform(0, 2000)) // 100 for _ in range(400))
    assert max(uniform.values()) > 25


def test_no_sockets_no_delays_and_a_zero_window_means_now() -> None:
    assert reconnect_delays(0, 2000, random.Random(3)) == []
    assert reconnect_delays(5, 0, random.Random(3)) == [0] * 5
