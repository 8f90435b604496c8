"""The real pre-commit hook: installed by pre-commit from this checkout (non-editable) into its own
environment, run in a scratch repository that has its own conf/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "bitsandbytes")

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("user-repo")
    home = tmp_path_factory.mktemp("pre-commit-home")
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    (repo / "conf" / "schedule").mkdir(parents=True)
    (repo / "conf" / "schedule" / "clean.yaml").write_text(
        "# my schedule\ndefaults:\n  - cosine\n  - _self_\nlearning_rate: 1.0e-4\n")
    (repo / "conf" / "schedule" / "too-hot.yaml").write_text(
        "# my schedule\ndefaults:\n  - cosine\n  - _self_\nlearning_rate: 5.0e-3\n")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        assert _run(cmd, repo, env).returncode == 0
    return repo, home, env


def _try_repo(scratch, *files: str) -> subprocess.CompletedProcess:
    repo, _, env = scratch
    return _run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "loracfg-lint", "--verbose",
                 "--files", *files], repo, env)


def test_clean_file_passes(scratch):
    r = _try_repo(scratch, "conf/schedule/clean.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "loracfg lint" in r.stdout and "Passed" in r.stdout


def test_bad_learning_rate_fails_with_the_diagnostic(scratch):
    r = _try_repo(scratch, "conf/schedule/too-hot.yaml")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "conf/schedule/too-hot.yaml:5:16: L001 [error] learning_rate 0.005 is above 0.001" in r.stdout
    assert "help: schedule.learning_rate=2e-4" in r.stdout


def _snapshot(dest: Path, env: dict) -> str:
    """This checkout as it is (tracked and untracked-not-ignored files) committed to a fresh repo, as try-repo does."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT, env).stdout.split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "snapshot"]):
        assert _run(cmd, dest, env).returncode == 0
    return _run(["git", "rev-parse", "HEAD"], dest, env).stdout.strip()


def test_hook_environment_is_light_and_uses_the_installed_package(scratch, tmp_path):
    repo, home, env = scratch
    rev = _snapshot(tmp_path, env)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {tmp_path}\n    rev: {rev}\n    hooks:\n      - id: loracfg-lint\n")
    r = _run([sys.executable, "-m", "pre_commit", "run", "--files", "conf/schedule/clean.yaml"], repo, env)
    assert r.returncode == 0, r.stdout + r.stderr
    pythons = sorted(home.glob("repo*/py_env-*/bin/python"))
    assert pythons, f"no hook environment under {home}"
    probe = ("import importlib.util as u, loracfg.compiler.resources as r\n"
             f"print([m for m in {HEAVY!r} if u.find_spec(m)])\nprint(r.shipped_conf_dir())\nprint(r.schemas_dir())")
    out = _run([str(pythons[-1]), "-c", probe], home, env)
    heavy, conf_dir, schemas = out.stdout.splitlines()
    assert heavy == "[]", "the hook environment must not hold the training stack"
    assert "site-packages" in conf_dir and conf_dir.endswith("compiler/_shipped/conf")
    assert "site-packages" in schemas
    # without the train extra, compile and diff say which extra to install (run for real, nothing patched)
    exe = pythons[-1].parent / "loracfg"
    for args in (["compile", "-o", "plan.json"], ["diff", "lora=r16", "lora=r64"]):
        r = _run([str(exe), *args], repo, env)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"`loracfg {args[0]}` builds Hugging Face objects and needs the train extra" in r.stderr, r.stderr
        assert "pip install 'loracfg[train]'" in r.stderr and "Traceback" not in r.stderr
    assert not (repo / "plan.json").exists()
