"""Timing whole processes side by side: one warm-up run each, then interleaved repeats."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path


def time_commands(commands: dict[str, list[str]], repeats: int, cwd: Path) -> dict[str, list[float]]:
    """Seconds per run of each command; interleaving spreads machine noise over all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in commands}
    for cmd in commands.values():  # warm-up: file caches, .pyc
        subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)
    for _ in range(repeats):
        for name, cmd in commands.items():
            t = time.perf_counter()
            subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)
            times[name].append(time.perf_counter() - t)
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in times.items()}
