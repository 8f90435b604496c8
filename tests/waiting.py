"""Wait on an observable event (a checkpoint, a log line, a job state), failing the test loudly at the deadline.

The one place in tests/ that polls: callers name what they wait for and never sleep for a guessed time."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Callable, TypeVar

import pytest

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout: float, proc: subprocess.Popen | None = None,
             interval: float = 0.05) -> T:
    """Return ``condition()``'s first truthy value; fail naming ``what`` if ``proc`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"the process ended (exit {proc.returncode}) before {what}:\n{(out or '')[-2000:]}\n"
                        f"{(err or '')[-3000:]}")
        if time.monotonic() > deadline:
            if proc is not None:
                proc.kill()
            pytest.fail(f"waited {timeout:.0f}s for {what}; it never happened")
        time.sleep(interval)


def checkpoint_complete(checkpoint: Path) -> bool:
    """Read independently of the runner: the Trainer's state file, the last it writes, is there and whole."""
    try:
        return isinstance(json.loads((checkpoint / "trainer_state.json").read_text()), dict)
    except (OSError, ValueError):
        return False
