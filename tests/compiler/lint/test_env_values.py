"""Linting an untrusted config leaks nothing: a value read with ``${oc.env:NAME}`` is shown as that
interpolation in every output format, also inside rule messages, and ``_target_`` keys are never
instantiated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SECRET = "hunter2-very-secret"


def lint(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "lint", *args], cwd=repo, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def repo_with(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "conf" / "lora").mkdir(parents=True)
    (tmp_path / "conf" / "lora" / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_an_environment_value_is_shown_as_its_interpolation(tmp_path, fmt):
    repo = repo_with(tmp_path, "leak.yaml", "defaults:\n  - r16\n  - _self_\nlora_alpha: ${oc.env:MY_TOKEN}\n")
    r = lint(repo, "-o", fmt, "conf/lora/leak.yaml", MY_TOKEN=SECRET)
    assert r.returncode == 1 and "S002" in r.stdout
    assert SECRET not in r.stdout + r.stderr
    assert "${oc.env:MY_TOKEN}" in r.stdout


def test_a_rule_message_does_not_show_an_environment_number(tmp_path):
    repo = repo_with(tmp_path, "alpha.yaml",
                     "defaults:\n  - r16\n  - _self_\nr: 8\nlora_alpha: ${oc.decode:${oc.env:MY_ALPHA}}\n")
    r = lint(repo, "conf/lora/alpha.yaml", MY_ALPHA="64")
    assert "L003" in r.stdout, r.stdout  # alpha/r = 64/8 is still checked: lint resolves the value
    assert "${oc.env:MY_ALPHA}/8" in r.stdout and "64/8" not in r.stdout


def test_target_keys_are_never_instantiated(tmp_path):
    marker = tmp_path / "instantiated"
    repo = repo_with(tmp_path, "evil.yaml", f"defaults:\n  - r16\n  - _self_\nextra:\n  _target_: builtins.open\n"
                                            f"  file: {marker}\n  mode: w\n")
    r = lint(repo, "conf/lora/evil.yaml")
    assert r.returncode == 1 and "S001" in r.stdout  # an unknown key, nothing more
    assert not marker.exists()
