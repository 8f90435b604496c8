from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _run_in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Diagnostics show paths relative to the working directory; tests read them from the repo root.
    monkeypatch.chdir(ROOT)
