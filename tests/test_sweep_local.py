"""A real local learning-rate sweep of the embedded default through `python train.py sweep=lr`, and its report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
PIL = pytest.importorskip("PIL.Image", reason="matplotlib (the report extra) brings Pillow")

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["schedule.max_steps=20", "schedule.num_train_epochs=null", "schedule.eval_steps=10", "schedule.save_steps=10",
         "data.num_samples=320", "data.max_seq_length=64"]
pytestmark = pytest.mark.slow


def train(tmp_path: Path, sweep_dir: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args, f"output_dir={tmp_path / 'runs'}",
                           f"hydra.sweep.dir={tmp_path / sweep_dir}", *SHORT], cwd=tmp_path, capture_output=True,
                          text=True, timeout=1200)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    r = train(tmp, "sweep", "sweep=lr")
    assert r.returncode == 0, r.stderr[-4000:]
    return tmp, r


def test_four_points_run_as_four_jobs(sweep):
    tmp, r = sweep
    assert "loracfg: 4 sweep points lint clean; launching 4" in r.stderr
    pointers = sorted((tmp / "sweep").glob("*/loracfg.json"))
    assert len(pointers) == 4
    runs = [json.loads(p.read_text()) for p in pointers]
    assert all(p["status"] == "finished" for p in runs)
    assert len({p["run_dir"] for p in runs}) == 4
    assert "4 points, 4 finished, 0 failed" in r.stderr


def test_report_writes_the_table_and_a_real_plot(sweep):
    tmp, _ = sweep
    r = subprocess.run([sys.executable, "-m", "compiler.cli", "report", str(tmp / "sweep")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    table = (tmp / "sweep" / "report.md").read_text().splitlines()
    assert table[2].startswith("| schedule.learning_rate | final train loss | best eval loss | steps |")
    assert len(table) == 4 + 4 and sum("**best**" in row for row in table) == 1
    data = json.loads((tmp / "sweep" / "report.json").read_text())
    assert data["swept"] == ["schedule.learning_rate"] and len(data["points"]) == 4
    image = PIL.open(tmp / "sweep" / "loss_curves.png")
    image.load()
    assert image.format == "PNG" and image.size[0] >= 400
    assert image.text["Description"] == "loracfg loss curves: 4 points"


def test_rerunning_a_finished_sweep_launches_nothing(sweep):
    tmp, _ = sweep
    r = train(tmp, "again", "sweep=lr")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "all 4 points of this sweep already finished; nothing to launch" in r.stderr
    assert "Launching" not in r.stderr and not (tmp / "again").exists()


def test_a_bad_point_launches_nothing_and_is_named(tmp_path):
    r = train(tmp_path, "bad", "-m", "schedule.learning_rate=1e-4,5e-3")
    assert r.returncode == 1
    assert "sweep point schedule.learning_rate=0.005" in r.stderr and "L001" in r.stderr
    assert not (tmp_path / "bad").exists() and not (tmp_path / "runs").exists()


def test_a_failing_point_does_not_take_the_others_down(tmp_path):
    r = train(tmp_path, "mixed", "-m", "data.path=builtin:tiny-patterns,builtin:no-such-set")
    assert r.returncode == 0, r.stderr[-3000:]
    # Hydra escapes ':' in swept values (data.path=builtin\\:tiny-patterns), as it passes them to its jobs
    runs = {json.loads(p.read_text())["overrides"][0].rsplit(":", 1)[1]: json.loads(p.read_text())
            for p in (tmp_path / "mixed").glob("*/loracfg.json")}
    assert runs["tiny-patterns"]["status"] == "finished"
    failed = runs["no-such-set"]
    assert failed["status"] == "failed" and "builtin:tiny-patterns" in failed["error"]
    assert "1 failed" in r.stderr and "no-such-set" in r.stderr.split("1 failed", 1)[1]


def test_optuna_sweeper_minimizes_the_eval_loss_train_py_returns(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the optuna extra")
    r = train(tmp_path, "optuna", "sweep=lr-optuna", "hydra.sweeper.n_trials=2")
    assert r.returncode == 0, r.stderr[-4000:]
    assert "the search space lints clean at its bounds (2 corner points)" in r.stderr
    import yaml

    result = yaml.safe_load((tmp_path / "optuna" / "optimization_results.yaml").read_text())
    losses = [json.loads((Path(json.loads(p.read_text())["run_dir"]) / "metrics.json").read_text())["final_eval_loss"]
              for p in (tmp_path / "optuna").glob("*/loracfg.json")]
    assert len(losses) == 2 and result["best_value"] == pytest.approx(min(losses))
    assert 5e-5 <= result["best_params"]["schedule.learning_rate"] <= 5e-4
