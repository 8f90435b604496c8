"""loracfg as an installed package: one import namespace, a tree with no import cycle, and the built wheel
working in a fresh virtual environment outside this checkout (lint, compile, ``loracfg train``, a sweep)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR = PYPROJECT["tool"]["setuptools"]["package-dir"]
# the stage packages, in the order data flows through them: a package imports only ones before it
STAGES = ["loracfg.compiler.estimate", "loracfg.compiler.lint", "loracfg.compiler.plan", "loracfg.compiler.sweep"]


def _modules() -> dict[str, Path]:
    """Every module of the package by its installed name (loracfg.compiler.lint.compose -> its file)."""
    out = {}
    for name, folder in PACKAGE_DIR.items():
        if name.count(".") != 1:  # loracfg.compiler and loracfg.runner; _shipped holds no code
            continue
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            out[".".join([name, *parts[:-1]] + ([] if parts[-1] == "__init__" else [parts[-1]]))] = path
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules its import statements name, lazy ones (inside functions) included."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against this module's package
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module mod
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a -> b -> ... -> a) if there is any, by depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_the_package():
    modules = _modules()
    assert "loracfg.compiler.lint.compose" in modules and "loracfg.runner.data.prepare" in modules
    graph = import_graph(modules)
    assert "loracfg.compiler.lint.compose" in graph["loracfg.compiler.lint.check"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_stage_packages_import_only_earlier_stages():
    """estimate <- lint <- plan <- sweep: the tree reads as the flow, and no stage reaches back."""
    graph = import_graph(_modules())

    def stage(module: str) -> int | None:
        return next((i for i, s in enumerate(STAGES) if module == s or module.startswith(s + ".")), None)

    backwards = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                       if stage(m) is not None and stage(t) is not None and stage(t) > stage(m))
    assert not backwards, backwards


def test_setuptools_lists_every_package_of_the_tree():
    """A folder with an __init__.py that pyproject.toml does not list would be left out of the wheel."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    in_tree = {m for m, p in _modules().items() if p.name == "__init__.py"}
    assert in_tree - listed == set(), "add these to [tool.setuptools] packages"
    assert {p for p in listed if not p.startswith(("loracfg.compiler._shipped", "hydra_plugins"))} == in_tree


# --- the built wheel, in a fresh venv outside the checkout -------------------------------------------------

USER_CONF = {
    "conf/lora/mine.yaml": "# my adapter: only what differs from the library defaults\nr: 8\nlora_alpha: 16\n"
                           "target_modules: [q_proj, v_proj]\n",
    "conf/schedule/short.yaml": "defaults:\n  - cosine\n  - _self_\nmax_steps: 2\nlogging_steps: 1\n"
                                "eval_steps: 2\nsave_steps: 2\n",
}


def _run(args: list, cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed with its core dependencies into a new venv.

    The train extra (torch, transformers, peft, ...) is not downloaded again: a .pth line after the venv's own
    site-packages lends this environment's. loracfg itself can only come from the wheel: this environment's
    loracfg is an editable install whose finder a plain path line does not load (asserted below)."""
    tmp = tmp_path_factory.mktemp("package")
    # built from a copy of what git would commit: setuptools' build/ keeps modules deleted since the last build,
    # and a wheel built in place would carry them
    source = tmp / "source"
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT, dict(os.environ))
    for rel in filter(None, listed.stdout.split("\0")):
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    dist = tmp / "dist"
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, source],
             tmp, dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    wheel = next(dist.glob("loracfg-*.whl"))
    venv = tmp / "venv"
    assert _run([sys.executable, "-m", "venv", venv], tmp, dict(os.environ)).returncode == 0
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp,
                     dict(os.environ)).stdout.strip())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    r = _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel], tmp, env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    import sysconfig

    (site / "zz_train_extra.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    repo = tmp / "user-repo"
    for rel, text in USER_CONF.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    return wheel, venv, site, repo, env


@pytest.mark.slow
def test_wheel_holds_only_the_loracfg_namespace(installed):
    wheel, _, _, _, _ = installed
    with zipfile.ZipFile(wheel) as z:
        tops = {n.split("/")[0] for n in z.namelist()}
        names = z.namelist()
    assert tops == {"loracfg", "hydra_plugins", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1]
                    + ".dist-info"}, tops
    assert "loracfg/compiler/_shipped/conf/config.yaml" in names
    assert "loracfg/compiler/_shipped/schemas/lora.schema.json" in names
    assert "loracfg/compiler/lint/rules/learning_rate_out_of_range.py" in names


@pytest.mark.slow
def test_pip_show_lists_no_other_top_level_module(installed):
    _, venv, site, repo, env = installed
    r = _run([venv / "bin" / "python", "-m", "pip", "show", "-f", "loracfg"], repo, env)
    assert r.returncode == 0, r.stderr
    assert f"Location: {site}" in r.stdout, r.stdout[:500]
    files = [line.strip() for line in r.stdout.split("Files:", 1)[1].splitlines() if line.strip()]
    tops = {f.split("/")[0] for f in files if not f.startswith("..")}  # ../../../bin/loracfg: the script
    assert tops == {"loracfg", "hydra_plugins", "loracfg-0.1.0.dist-info"}, tops
    assert any(f.endswith("bin/loracfg") for f in files)
    probe = ("import importlib.util as u, loracfg.compiler as c, hydra_plugins.loracfg_searchpath as h\n"
             "print(c.__file__); print(h.__file__); print(u.find_spec('compiler'), u.find_spec('runner'))")
    r = _run([venv / "bin" / "python", "-c", probe], repo, env)
    compiler_file, plugin_file, leaked = r.stdout.splitlines()
    assert compiler_file.startswith(str(site)) and plugin_file.startswith(str(site)), r.stdout + r.stderr
    assert leaked == "None None", leaked


@pytest.mark.slow
def test_lint_in_a_user_repository(installed):
    _, venv, _, repo, env = installed
    r = _run([venv / "bin" / "loracfg", "lint", "lora=mine", "schedule=short"], repo, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 error(s)" in r.stdout
    (repo / "conf" / "schedule" / "hot.yaml").write_text("defaults:\n  - cosine\n  - _self_\nlearning_rate: 5.0e-3\n")
    try:
        r = _run([venv / "bin" / "loracfg", "lint", "schedule=hot"], repo, env)
    finally:
        (repo / "conf" / "schedule" / "hot.yaml").unlink()
    assert r.returncode == 1 and "conf/schedule/hot.yaml:4:16: L001 [error]" in r.stdout, r.stdout + r.stderr


@pytest.mark.slow
def test_compile_in_a_user_repository(installed):
    _, venv, _, repo, env = installed
    r = _run([venv / "bin" / "loracfg", "compile", "lora=mine", "-o", "plan.json"], repo, env)
    assert r.returncode == 0, r.stdout + r.stderr
    plan = json.loads((repo / "plan.json").read_text())
    assert plan["lora"]["LoraConfig"]["r"] == 8 and plan["lora"]["LoraConfig"]["target_modules"] == ["q_proj",
                                                                                                        "v_proj"]


@pytest.mark.slow
def test_train_and_a_two_point_sweep_in_a_user_repository(installed, tmp_path):
    _, venv, _, repo, env = installed
    loracfg = venv / "bin" / "loracfg"
    r = _run([loracfg, "train", "lora=mine", "schedule=short", f"output_dir={tmp_path / 'runs'}",
              f"hydra.run.dir={tmp_path / 'run'}"], repo, env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert re.search(r"finished \S+: \{'global_step': 2,", r.stdout), r.stdout[-2000:]
    pointer = json.loads((tmp_path / "run" / "loracfg.json").read_text())
    assert pointer["status"] == "finished" and pointer["overrides"][:2] == ["lora=mine", "schedule=short"]
    r = _run([loracfg, "train", "-m", "lora=mine", "schedule=short", "schedule.learning_rate=1e-4,3e-4",
              f"output_dir={tmp_path / 'runs'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"], repo, env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 sweep points lint clean; launching 2" in r.stderr
    points = sorted(json.loads(p.read_text())["status"] for p in (tmp_path / "sweep").glob("*/loracfg.json"))
    assert points == ["finished", "finished"]
    r = _run([loracfg, "train", "lora=mine", "--cfg", "job"], repo, env)
    assert r.returncode == 0 and "lora_alpha: 16" in r.stdout and "max_steps" in r.stdout, r.stdout + r.stderr
