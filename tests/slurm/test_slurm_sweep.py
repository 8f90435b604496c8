"""A two-point sweep on a real (throwaway, one-node) SLURM cluster through hydra-submitit-launcher,
with one job requeued mid-training: it resumes from its checkpoint and ends at the same step count.

The cluster (Debian's slurmctld, slurmd, munge on 127.0.0.1, as root) is started by cluster.sh
beside this file and stopped at the end; without those packages or root the test is skipped and
says why (.ci/run installs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the slurm extra (hydra-submitit-launcher)")

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = Path(__file__).with_name("cluster.sh")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    r = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True, timeout=120)
    if r.returncode == 3:
        pytest.skip(f"no SLURM cluster here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stdout + r.stderr
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
    yield env
    subprocess.run(["bash", str(CLUSTER), "stop", str(state)], capture_output=True, timeout=60)


def scontrol(env: dict, *args: str) -> str:
    r = subprocess.run(["scontrol", *args], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_two_point_sweep_as_slurm_jobs_survives_a_requeue(slurm, tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1",
           "hydra.launcher.mem_gb=2", "schedule.learning_rate=1e-4,2e-4", f"output_dir={tmp_path / 'runs'}",
           f"hydra.sweep.dir={sweep}", "schedule.max_steps=200", "schedule.num_train_epochs=null",
           "schedule.eval_strategy=no", "schedule.save_steps=10", "schedule.save_total_limit=null",
           "data.num_samples=640"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pointer = sweep / "0" / "loracfg.json"
    deadline = time.time() + 300
    info: dict = {}
    while time.time() < deadline:  # wait until point 0 runs as a SLURM job and has a checkpoint
        if pointer.is_file():
            info = json.loads(pointer.read_text())
            if info.get("run_dir") and (Path(info["run_dir"]) / "checkpoint-20" / "trainer_state.json").is_file():
                break
        assert proc.poll() is None, proc.stdout.read()[-4000:]
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("point 0 never reached checkpoint-20")
    job = info["slurm_job_id"]
    assert job, "the point runs inside a SLURM job"
    scontrol(slurm, "requeue", job)
    time.sleep(1)
    assert "Restarts=1" in scontrol(slurm, "show", "job", job)
    scontrol(slurm, "update", f"JobId={job}", "StartTime=now")  # SLURM holds a requeued job ~2 min otherwise
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    assert "2 points, 2 finished, 0 failed" in out

    points = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/loracfg.json"))]
    assert len(points) == 2 and all(p["status"] == "finished" and p["slurm_job_id"] for p in points)
    assert len({p["slurm_job_id"] for p in points}) == 2
    assert list((sweep / ".submitit").glob("*_0/*_log.out"))  # submitit's per-job logs
    for p in points:
        m = json.loads((Path(p["run_dir"]) / "metrics.json").read_text())
        assert m["finished"] and m["global_step"] == 200 and m["cpu_threads"] == 1
        assert (Path(p["run_dir"]) / "adapter" / "adapter_model.safetensors").is_file()
    requeued = json.loads((Path(info["run_dir"]) / "metrics.json").read_text())
    assert requeued["resumed_from"], "the requeued job resumed from its checkpoint"
    assert int(requeued["resumed_from"][0].rsplit("-", 1)[1]) >= 20
    assert [s for s, _ in requeued["train_loss_curve"]][:2] == [10, 20]  # the curve from before the requeue is kept
