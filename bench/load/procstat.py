"""CPU and memory of the server, Redis and Cassandra processes, read from ``/proc``.

``Sampler`` polls a few processes in a thread while a step runs; ``usage`` turns the samples
into CPU (user + sys seconds per wall second, i.e. cores) and RSS over any window of the step,
interpolating between samples. ``pid_listening_on`` finds the process behind a port, so a
server that someone else started can be watched too; a process is read with its descendants
(``messenger serve --workers N`` is a supervisor and N workers).
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading: wall time, CPU seconds used so far, resident bytes."""

    t: float
    cpu_s: float
    rss: int


def parse_stat(text: str) -> float:
    """user + sys CPU seconds from a ``/proc/<pid>/stat`` line (the name may hold spaces)."""
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def parse_statm(text: str) -> int:
    """Resident bytes from a ``/proc/<pid>/statm`` line."""
    return int(text.split()[1]) * PAGE


def read(pid: int) -> ProcSample | None:
    """The process's sample now, None if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        statm = (PROC / str(pid) / "statm").read_text()
    except OSError:
        return None
    return ProcSample(time.time(), parse_stat(stat), parse_statm(statm))


def parent_of(stat: str) -> int:
    """The parent pid from a ``/proc/<pid>/stat`` line."""
    return int(stat[stat.rindex(")") + 2:].split()[1])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, found through each process's parent in ``/proc``."""
    children: dict[int, list[int]] = {}
    for proc in PROC.iterdir():
        if proc.name.isdigit():
            try:
                children.setdefault(parent_of((proc / "stat").read_text()), []).append(
                    int(proc.name))
            except OSError:
                continue
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found.extend(below)
        todo.extend(below)
    return found


def read_tree(pids: list[int]) -> ProcSample | None:
    """The processes' samples summed (those still there), None if all are gone."""
    samples = [sample for sample in map(read, pids) if sample is not None]
    if not samples:
        return None
    return ProcSample(samples[0].t, sum(s.cpu_s for s in samples), sum(s.rss for s in samples))


def listening_inodes(port: int, tables: tuple[str, ...] = ("tcp", "tcp6")) -> set[str]:
    """Socket inodes listening on ``port`` (any address), from ``/proc/net``."""
    inodes = set()
    for table in tables:
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    return inodes


def pid_listening_on(port: int) -> int | None:
    """The process that listens on TCP ``port`` on this machine, if it can be seen."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not wanted:
        return None
    for proc in PROC.iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(proc.name)
        except OSError:
            continue
    return None


def load_average() -> str:
    """``/proc/loadavg``'s three averages."""
    try:
        return " ".join((PROC / "loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _at(samples: list[ProcSample], t: float) -> float:
    """Cumulative CPU seconds at ``t``, linear between the samples around it."""
    times = [s.t for s in samples]
    i = bisect_left(times, t)
    if i == 0:
        return samples[0].cpu_s
    if i == len(samples):
        return samples[-1].cpu_s
    a, b = samples[i - 1], samples[i]
    share = (t - a.t) / (b.t - a.t) if b.t > a.t else 1.0
    return a.cpu_s + share * (b.cpu_s - a.cpu_s)


def usage(samples: list[ProcSample], t0: float, t1: float) -> dict[str, float] | None:
    """CPU cores used over ``[t0, t1]``, and RSS (MiB) at its end and at most, from
    ``samples`` (in time order); None with fewer than two samples or an empty window."""
    if len(samples) < 2 or t1 <= t0:
        return None
    inside = [s.rss for s in samples if t0 <= s.t <= t1] or [samples[-1].rss]
    last = min(samples, key=lambda s: abs(s.t - t1))
    return {"cpu_s": round(_at(samples, t1) - _at(samples, t0), 3),
            "cpu_cores": round((_at(samples, t1) - _at(samples, t0)) / (t1 - t0), 3),
            "rss_mib": round(last.rss / 2**20, 1),
            "rss_max_mib": round(max(inside) / 2**20, 1)}  # fmt: skip


@dataclass
class Sampler:
    """Reads every named process (with its descendants, as found at start) each
    ``interval`` s in a thread, between start and stop."""

    pids: dict[str, int]
    interval: float = 0.1
    series: dict[str, list[ProcSample]] = field(default_factory=dict)
    _trees: dict[str, list[int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        """Begin sampling (the series start afresh)."""
        self.series = {name: [] for name in self.pids}
        self._trees = {name: [pid, *descendants(pid)] for name, pid in self.pids.items()}
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="procstat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample and end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def usage(self, t0: float, t1: float) -> dict[str, dict[str, float] | None]:
        """``usage`` of every process over ``[t0, t1]``."""
        return {name: usage(samples, t0, t1) for name, samples in self.series.items()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for name, tree in self._trees.items():
            sample = read_tree(tree)
            if sample is not None:
                self.series[name].append(sample)
