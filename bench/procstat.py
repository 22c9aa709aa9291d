"""CPU time and memory of processes, read from ``/proc`` (Linux only, no dependency)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    """One reading of a process: CPU seconds used so far, current and peak resident memory."""

    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (its own, not its children's)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def memory(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of ``pid`` in bytes: resident memory now and at its peak."""
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return rss, hwm


def sample(pid: int) -> ProcSample | None:
    """A reading of ``pid``, or ``None`` if it has exited."""
    try:
        rss, hwm = memory(pid)
        return ProcSample(cpu_seconds(pid), rss, hwm)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def sample_all(pids: dict[str, int]) -> dict[str, ProcSample]:
    """Readings of several named processes (those that have exited are left out), and under
    ``"other"`` the CPU the rest of the machine used (everything busy minus these)."""
    found: dict[str, ProcSample] = {}
    for name, pid in pids.items():
        reading = sample(pid)
        if reading is not None:
            found[name] = reading
    ours = sum(r.cpu_seconds for r in found.values())
    found["other"] = ProcSample(machine_busy_seconds() - ours, 0, 0)
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (``/proc/stat``; not idle/iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def cpu_delta(before: dict[str, ProcSample], after: dict[str, ProcSample]) -> dict[str, float]:
    """CPU seconds each process used between two :func:`sample_all` readings."""
    return {
        name: round(after[name].cpu_seconds - before[name].cpu_seconds, 2)
        for name in after
        if name in before
    }


def machine() -> dict[str, object]:
    """What the figures were measured on: CPU model, cores, memory, kernel, load."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    uname = os.uname()
    return {
        "cpu_model": model,
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024**2, 1),
        "kernel": f"{uname.sysname} {uname.release} {uname.machine}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
