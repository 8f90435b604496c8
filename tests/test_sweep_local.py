"""A real local learning-rate sweep of the embedded default through `python train.py sweep=lr`, and its report."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
PIL = pytest.importorskip("PIL.Image", reason="matplotlib (the report extra) brings Pillow")

from tests.waiting import wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["schedule.max_steps=20", "schedule.num_train_epochs=null", "schedule.eval_steps=10", "schedule.save_steps=10",
         "data.num_samples=320", "data.max_length=64"]
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
    assert "Launching 4 jobs locally" in r.stdout  # Hydra's launcher logs to stdout
    pointers = sorted((tmp / "sweep").glob("*/loracfg.json"))
    assert len(pointers) == 4
    runs = [json.loads(p.read_text()) for p in pointers]
    assert all(p["status"] == "finished" for p in runs)
    assert len({p["run_dir"] for p in runs}) == 4
    assert "4 points, 4 finished, 0 failed" in r.stderr


def test_report_writes_the_table_and_a_real_plot(sweep):
    tmp, _ = sweep
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "report", str(tmp / "sweep")], capture_output=True,
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


def _report(sweep_dir: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "report", str(sweep_dir)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads((sweep_dir / "report.json").read_text())


def test_report_says_which_points_are_running_and_which_were_interrupted(tmp_path):
    live = tmp_path / "live"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "schedule.learning_rate=1e-4,2e-4",
           f"output_dir={tmp_path / 'runs'}", f"hydra.sweep.dir={live}", "schedule.max_steps=2000",
           "schedule.num_train_epochs=null", "schedule.eval_strategy=no", "schedule.save_steps=1000",
           "data.num_samples=320", "data.max_length=64"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def training() -> bool:  # the first point's run has started: its pointer and metrics.json exist
            pointer = live / "0" / "loracfg.json"
            info = json.loads(pointer.read_text()) if pointer.is_file() else {}
            return bool(info.get("run_dir")) and (Path(info["run_dir"]) / "metrics.json").is_file()

        wait_for(training, "the first point to start training", 300, proc)
        points = _report(live)["points"]
        assert [p["status"] for p in points] == ["running"], points
        assert "| running |" in (live / "report.md").read_text()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=300)
        assert proc.returncode == 128 + signal.SIGTERM
    finally:
        proc.kill()
    [point] = _report(live)["points"]
    assert point["status"] == "interrupted" and "stopped by SIGTERM" in point["error"], point


def test_rerunning_a_finished_sweep_launches_nothing(sweep):
    tmp, _ = sweep
    r = train(tmp, "again", "sweep=lr")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "all 4 points of this sweep already finished; nothing to launch" in r.stderr
    assert "Launching" not in r.stdout + r.stderr and not (tmp / "again").exists()


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
    trials = {}  # learning rate -> final eval loss, read from each trial's own run directory
    for p in (tmp_path / "optuna").glob("*/loracfg.json"):
        run = Path(json.loads(p.read_text())["run_dir"])
        lr = json.loads((run / "config.json").read_text())["schedule"]["learning_rate"]
        trials[lr] = json.loads((run / "metrics.json").read_text())["final_eval_loss"]
    assert len(trials) == 2
    best_lr = min(trials, key=trials.get)
    assert result["best_value"] == pytest.approx(trials[best_lr])
    assert result["best_params"]["schedule.learning_rate"] == pytest.approx(best_lr)
