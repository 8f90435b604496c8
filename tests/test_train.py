"""train.py is a Hydra app: Hydra's flags work, and lint errors stop it with loracfg's diagnostics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_hydra_flags_keep_working(tmp_path):
    r = train("--cfg", "job", "lora=r64", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "r: 64" in r.stdout and "lora_alpha: 128" in r.stdout
    info = train("--info", "defaults", cwd=tmp_path)
    assert info.returncode == 0 and "lora/r16" in info.stdout


def test_lint_errors_stop_it_with_the_same_diagnostics(tmp_path):
    r = train("schedule.learning_rate=5e-3", cwd=tmp_path)
    assert r.returncode == 1
    assert "<command line>:1:24: L001 [error] learning_rate 0.005 is above 0.001" in r.stderr
    assert "help: schedule.learning_rate=2e-4" in r.stderr
