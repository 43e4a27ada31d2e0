"""A server's processes, its CPU time and its memory, read from /proc (Linux).

A server is its top processes (Apache's parent, shibd, uvicorn's process) and all their
descendants, found by parent pid at the moment of reading: Apache's children, the gate's
verification children. CPU time is each live process's user + system time with the time of its
children already reaped (``cutime``/``cstime``), so a child that ends between two readings still
counts. The kernel keeps these figures exactly (``/proc/<pid>/stat`` gives them in clock ticks,
10 ms), which is precise enough over the thousands of requests each reading spans. Memory is PSS
(``/proc/<pid>/smaps_rollup``): each page shared by n processes counts 1/n in each, so the sum
over the server's processes is what the server as a whole occupies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # ended meanwhile
        return None
    return text.rpartition(")")[2].split()


def tree(roots: tuple[int, ...]) -> list[int]:
    """``roots`` and every live descendant of theirs."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _name(pid: int, roots: tuple[int, ...]) -> str:
    """The command name, with "(child)" after a descendant's: ``apache2 (child)``."""
    name = Path(f"/proc/{pid}/comm").read_text().strip()
    return name if pid in roots else name + " (child)"


def cpu_by_name(roots: tuple[int, ...]) -> dict[str, float]:
    """CPU seconds used so far by the server's processes (with the children they reaped),
    summed by name (see ``_name``)."""
    found: dict[str, float] = {}
    for pid in tree(roots):
        fields = _stat(pid)
        try:
            name = _name(pid, roots)
        except OSError:
            continue
        if fields is not None:  # utime, stime, cutime, cstime: fields 14-17 of stat
            found[name] = found.get(name, 0.0) + sum(int(x) for x in fields[11:15]) / TICK
    return found


def cpu_seconds(roots: tuple[int, ...]) -> float:
    """CPU seconds used so far by the server: its live processes and the children they reaped."""
    return sum(cpu_by_name(roots).values())


@dataclass(frozen=True)
class Memory:
    """PSS of each of a server's processes, by name."""

    processes: list[tuple[int, str, int]]
    """(pid, command name, PSS bytes)."""

    @property
    def total(self) -> int:
        return sum(pss for _, _, pss in self.processes)

    def by_name(self) -> str:
        """``apache2 4 x 12.3 MB, shibd 1 x 40.1 MB``: the processes grouped by command name."""
        groups: dict[str, list[int]] = {}
        for _, name, pss in self.processes:
            groups.setdefault(name, []).append(pss)
        return ", ".join(
            f"{name} {len(sizes)}x {sum(sizes) / 1e6:.1f} MB" for name, sizes in groups.items()
        )


def memory(roots: tuple[int, ...]) -> Memory:
    """PSS of the server's processes, named by command ("(child)" after a descendant's)."""
    found = []
    for pid in tree(roots):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            name = _name(pid, roots)
        except OSError:
            continue
        kb = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
        found.append((pid, name, kb * 1024))
    return Memory(found)


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (/proc/loadavg)."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)
