"""The compiler against the last transformers 4.x, in a virtual environment of its own.

The main test environment has the current transformers (5.x); this builds a second one with
transformers 4.57.6 (and the same torch, peft, bitsandbytes, accelerate) and runs the
compiler's tests there, so the signature-driven mapping is proven on both sides of the 5.0
renames. The environment is cached under LORACFG_TEST_CACHE (default ~/.cache/loracfg-tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TRANSFORMERS_4 = "4.57.6"
pytestmark = pytest.mark.slow


def _pin(name: str) -> str:
    try:
        return f"{name}=={version(name).split('+')[0]}"
    except PackageNotFoundError:
        pytest.skip(f"{name} is not installed here (the train extra)")


@pytest.fixture(scope="module")
def venv_python() -> Path:
    cache = Path(os.environ.get("LORACFG_TEST_CACHE", Path.home() / ".cache" / "loracfg-tests"))
    venv = cache / f"venv-transformers-{TRANSFORMERS_4}-py{sys.version_info.major}{sys.version_info.minor}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        reqs = [_pin("torch"), f"transformers=={TRANSFORMERS_4}", _pin("peft"), _pin("bitsandbytes"),
                _pin("accelerate"), "pytest", "hypothesis"]
        r = subprocess.run([str(python), "-m", "pip", "install", "-q", *reqs], capture_output=True, text=True,
                           timeout=1800)
        assert r.returncode == 0, r.stderr[-3000:]
    # datasets: the ejected script imports it (added after environments were first cached, so installed here),
    # held to a release whose huggingface-hub transformers 4.x accepts (it refuses hub 1.0 and later)
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), "datasets>=3.0",
                        "huggingface-hub>=0.34,<1.0"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return python


def test_compiler_tests_pass_against_transformers_4(venv_python):
    r = subprocess.run([str(venv_python), "-c", "import transformers; print(transformers.__version__)"],
                       capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == TRANSFORMERS_4
    r = subprocess.run([str(venv_python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/compiler/plan/test_hf.py", "tests/compiler/plan/test_build.py"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800)
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    assert " passed" in r.stdout.splitlines()[-1] and "skipped" not in r.stdout.splitlines()[-1], tail


def test_the_mapping_differs_where_transformers_changed(venv_python, tmp_path):
    """Same config, two versions: 4.x keeps warmup_ratio; 5.x takes it as warmup_steps < 1."""
    plans = {}
    for name, python in (("4", venv_python), ("5", Path(sys.executable))):
        out = tmp_path / f"plan{name}.json"
        r = subprocess.run([str(python), "-m", "loracfg.compiler.cli", "compile", "--config-dir", str(ROOT / "conf"),
                            "-o", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        plans[name] = __import__("json").loads(out.read_text())
    if not plans["5"]["compiled_for"]["transformers"].startswith("5."):
        pytest.skip("the main environment does not have transformers 5")
    ta4, ta5 = plans["4"]["training"]["TrainingArguments"], plans["5"]["training"]["TrainingArguments"]
    assert ta4["warmup_ratio"] == 0.03 and "warmup_steps" not in ta4
    assert ta5["warmup_steps"] == 0.03 and "warmup_ratio" not in ta5
    assert plans["4"]["hash"] != plans["5"]["hash"]  # compiled for different versions: different runs
