from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Run directories and Hydra's sweep directories default to these, relative to the working directory.
REPOSITORY_OUTPUTS = (ROOT / "outputs", ROOT / "multirun")


@pytest.fixture(autouse=True)
def _run_in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Diagnostics show paths relative to the working directory; tests read them from the repo root.
    monkeypatch.chdir(ROOT)


def _snapshot() -> dict[str, tuple[int, int]]:
    files = {}
    for top in REPOSITORY_OUTPUTS:
        for dirpath, _, names in os.walk(top):
            for name in names:
                st = os.stat(os.path.join(dirpath, name))
                files[os.path.relpath(os.path.join(dirpath, name), ROOT)] = (st.st_size, st.st_mtime_ns)
    return files


@pytest.fixture(scope="session", autouse=True)
def _repository_outputs_are_left_alone():
    """Every test writes its runs under its own tmp_path (output_dir=..., hydra.sweep.dir=...): a test
    that wrote into the checkout's outputs/ or multirun/ would also read earlier runs from there, and
    pass or fail by what the developer ran before."""
    before = _snapshot()
    yield
    after = _snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests wrote into the repository's outputs/ or multirun/: {changed[:10]}"
