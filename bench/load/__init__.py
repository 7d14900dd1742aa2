"""End-to-end load generator against a running ``messenger serve``: ``python -m bench.load``.

Open-loop: every send has a due time fixed in advance and latency is measured from it (receive
time minus the due time carried in the body), so a stalled server cannot hide behind a client
that waits for it. See ``bench/README.md`` for the workloads and how to run them.
"""
