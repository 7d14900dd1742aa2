"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): the functions with the
largest self and inclusive share of the samples, by ``file:function``.

    python -m bench.load.profile production-w2-20.txt [--top 25]

Paths are shortened to what follows ``site-packages/`` or the repository root, and line
numbers dropped, so a function's samples add up across its lines.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``file:function`` of one collapsed-stack frame, its path shortened."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker.startswith("/lib"):
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    else:
        for root in ("bench/", "api/", "gateway/", "inbox/", "sync/", "push/", "idgen/"):
            if f"/{root}" in path:
                path = root + path.rsplit(f"/{root}", 1)[1]
                break
    return f"{path}:{match['func']}"


def shares(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, and samples by function as the leaf (self) and anywhere (inclusive)."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        names = [frame_name(f) for f in stack.split(";") if f.strip()]
        if not names:
            continue
        total += n
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    return total, own, inclusive


def by_package(own: Counter[str]) -> Counter[str]:
    """Self samples added up by package (the path's first part: ``cassandra``, ``inbox``,
    ``stdlib``...), ``stdlib`` split by module (``stdlib/json``, ``stdlib/asyncio``)."""
    out: Counter[str] = Counter()
    for name, n in own.items():
        path = name.split(":", 1)[0]
        parts = path.split("/")
        key = "/".join(parts[:2]) if parts[0] == "stdlib" and len(parts) > 2 else parts[0]
        out[key.removesuffix(".py")] += n
    return out


def render(total: int, counts: Counter[str], top: int) -> str:
    """The ``top`` entries of ``counts`` as percentages of ``total``."""
    return "\n".join(f"{100 * n / total:6.1f}%  {name}" for name, n in counts.most_common(top))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    total, own, inclusive = shares(args.file.read_text().splitlines())
    print(f"{total} samples\n\nself by package:\n{render(total, by_package(own), args.top)}"
          f"\n\nself:\n{render(total, own, args.top)}\n\n"
          f"inclusive:\n{render(total, inclusive, args.top)}")


if __name__ == "__main__":
    main()
