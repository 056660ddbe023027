"""Statistics for benchmarks on a shared, noisy machine: paired ratios with their spread, and the machine's load.

A single timing (or the best of a few) on a machine where other processes come and go says more about them than
about our code. Both benches therefore run the baseline and the candidate in interleaved pairs on the same inputs,
and report the median of the per-pair ratios with its interquartile range: a burst of load slows both halves of a
pair alike, so the ratio survives it. `MachineLoad` says how much of the CPU other processes took meanwhile.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_PROC_STAT = Path("/proc/stat")
_LOADAVG = Path("/proc/loadavg")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
BUSY_WARNING_SHARE = 0.10
"""Warn when other processes used more than this share of the machine's CPU time during a bench."""


def spread(values: Sequence[float]) -> dict:
    """Median, quartiles and the interquartile range as a percentage of the median (0 for fewer than 2 values)."""
    if not values:
        raise ValueError("no values")
    median = statistics.median(values)
    if len(values) < 2:
        q1 = q3 = median
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {
        "median": round(median, 4),
        "q1": round(q1, 4),
        "q3": round(q3, 4),
        "iqr_pct": round((q3 - q1) / median * 100, 1) if median else 0.0,
    }


def paired_summary(baseline: Sequence[float], candidate: Sequence[float], *, higher_is_better: bool = False) -> dict:
    """The figures a paired case reports: the per-pair ratio's median and spread (the candidate's speed-up:
    baseline / candidate for seconds, candidate / baseline for throughputs when higher_is_better), and each side's
    median."""
    if len(baseline) != len(candidate) or not baseline:
        raise ValueError("pairs need as many baseline as candidate figures, at least one")
    pairs = zip(baseline, candidate, strict=True)
    ratios = [c / b for b, c in pairs] if higher_is_better else [b / c for b, c in pairs]
    return {
        "pairs": len(ratios),
        "ratio": spread(ratios),
        "baseline_median": round(statistics.median(baseline), 4),
        "median": round(statistics.median(candidate), 4),
    }


def round_order(items: Sequence, round_index: int) -> list:
    """The order to run `items` in on round `round_index`: as given, then reversed, alternately, so a slow drift
    of the machine's load favours neither the first nor the last item."""
    return list(items) if round_index % 2 == 0 else list(reversed(items))


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine, in clock ticks, or None where /proc/stat is missing."""
    try:
        fields = [int(value) for value in _PROC_STAT.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def _own_cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (bench-queue's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load_average() -> float | None:
    try:
        return float(_LOADAVG.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class MachineLoad:
    """Measures, between `start()` and `stop()`, the share of the machine's CPU time that processes other than
    this one (and its children) used. Use as a context manager; `figures()` gives the JSON fields."""

    started: float = 0.0
    jiffies: tuple[int, int] | None = None
    own_cpu: float = 0.0
    load_before: float | None = None
    load_after: float | None = None
    others_share: float | None = None

    def __enter__(self) -> MachineLoad:
        self.load_before, self.jiffies = _load_average(), _cpu_jiffies()
        self.own_cpu, self.started = _own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        wall = time.perf_counter() - self.started
        own = _own_cpu_seconds() - self.own_cpu
        after = _cpu_jiffies()
        self.load_after = _load_average()
        if self.jiffies is not None and after is not None and after[1] > self.jiffies[1] and wall > 0:
            busy_share = (after[0] - self.jiffies[0]) / (after[1] - self.jiffies[1])
            own_share = own / (wall * (os.cpu_count() or 1))
            self.others_share = max(0.0, busy_share - own_share)

    @property
    def warning(self) -> str | None:
        """One line when other processes took a noticeable share of the CPU, else None."""
        if self.others_share is None or self.others_share <= BUSY_WARNING_SHARE:
            return None
        return (
            f"warning: other processes used {self.others_share:.0%} of the CPU during the bench "
            f"(load average {self.load_before} before, {self.load_after} after); seconds are inflated, "
            "ratios are paired and less affected"
        )

    def figures(self) -> dict:
        return {
            "cpus": os.cpu_count(),
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
            "others_cpu_share": None if self.others_share is None else round(self.others_share, 3),
            "warning": self.warning,
        }


def reset_peak_memory(device) -> None:
    """Start a new peak-memory reading: CUDA's allocator statistics, or the process's peak RSS on Linux."""
    if device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
    elif _CLEAR_REFS.exists():
        try:  # Linux: writing 5 resets the process's peak RSS (VmHWM)
            _CLEAR_REFS.write_text("5")
        except OSError:
            pass


def peak_memory_mib(device) -> float:
    """Peak memory since the last reset_peak_memory (since start where it could not be reset), in MiB."""
    if device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    if _STATUS.exists():
        match = re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text())
        if match:
            return int(match.group(1)) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # since start: kB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
