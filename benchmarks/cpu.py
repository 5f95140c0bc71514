"""CPU time spent by the processes of a benchmark phase, from /proc (Linux).

A throughput ratio says how much slower one path is; the CPU each component spends per request
(or per job) says why. On a 2-core machine every process competes for the same cores, so CPU per
unit of work is also the steadier figure: it moves far less than requests per second when
something else runs.

    meter = CpuMeter({"gunicorn": worker_pids, "postgres": CpuMeter.named("postgres")})
    ... run the load ...
    meter.per_unit(requests)  # {"gunicorn": 0.83, "postgres": 0.06} in ms per request
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (field 3 onwards); [] for a process gone."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of a process: its own CPU and its reaped children's (a
    PostgreSQL backend that exited counts in the postmaster's cutime)."""
    return sum(int(value) for value in _stat_fields(pid)[11:15])


def _processes() -> list[int]:
    return [int(e.name) for e in PROC.iterdir() if e.name.isdigit()] if PROC.is_dir() else []


def pids_named(name: str) -> list[int]:
    """Every process whose command name is `name` (as `pgrep -x` matches)."""
    pids = []
    for pid in _processes():
        try:
            if (PROC / str(pid) / "comm").read_text().strip() == name:
                pids.append(pid)
        except OSError:
            continue
    return pids


def children_of(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's workers under its master)."""
    return [child for child in _processes() if _stat_fields(child)[1:2] == [str(pid)]]


class CpuMeter:
    """CPU ticks of named groups of processes while the meter runs (from construction, or
    between `resume` and `pause` calls, summed) up to `per_unit`.

    Each group is a callable returning its pids, asked at both ends (PostgreSQL backends come
    and go; exited ones are counted through the postmaster's children's time)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]):
        self._groups = groups
        self._spent = dict.fromkeys(groups, 0)
        self._start: dict[str, int] | None = self._read()

    @staticmethod
    def available() -> bool:
        return PROC.is_dir()

    def _read(self) -> dict[str, int]:
        return {name: sum(_ticks(pid) for pid in pids()) for name, pids in self._groups.items()}

    def pause(self) -> None:
        if self._start is not None:
            end = self._read()
            for name in self._groups:
                self._spent[name] += end[name] - self._start[name]
            self._start = None

    def resume(self) -> None:
        if self._start is None:
            self._start = self._read()

    def per_unit(self, units: float) -> dict[str, float]:
        """Milliseconds of CPU per unit of work, per group."""
        self.pause()
        scale = 1000 / TICKS_PER_SECOND / max(units, 1)
        return {name: round(self._spent[name] * scale, 3) for name in self._groups}
