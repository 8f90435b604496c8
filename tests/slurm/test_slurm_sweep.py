"""A two-point sweep on a real (throwaway, one-node) SLURM cluster through hydra-submitit-launcher,
with one job preempted mid-training the way SLURM does it: USR2 to the job's tasks, the runner saves
a checkpoint and hands the signal to submitit, which requeues the job; it resumes from that
checkpoint and ends at the same step count.

The cluster (Debian's slurmctld, slurmd, munge on 127.0.0.1, as root) is started by cluster.sh
beside this file and stopped at the end; without those packages or root the test is skipped and
says why (.ci/run installs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the slurm extra (hydra-submitit-launcher)")

from tests.waiting import checkpoint_complete, wait_for  # noqa: E402

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


def running_with_checkpoint_20(pointer: Path) -> dict | None:
    """The point's pointer file once its run has a complete checkpoint-20, else None."""
    info = json.loads(pointer.read_text()) if pointer.is_file() else {}
    return info if info.get("run_dir") and checkpoint_complete(Path(info["run_dir"]) / "checkpoint-20") else None


def test_two_point_sweep_as_slurm_jobs_survives_a_usr2_preemption(slurm, tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1",
           "hydra.launcher.mem_gb=2", "schedule.learning_rate=1e-4,2e-4", f"output_dir={tmp_path / 'runs'}",
           f"hydra.sweep.dir={sweep}", "schedule.max_steps=200", "schedule.num_train_epochs=null",
           "schedule.eval_strategy=no", "schedule.save_steps=10", "schedule.save_total_limit=null",
           "data.num_samples=640"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pointer = sweep / "0" / "loracfg.json"

    info = wait_for(lambda: running_with_checkpoint_20(pointer), "point 0 running as a SLURM job with checkpoint-20",
                    300, proc)
    job = info["slurm_job_id"]
    assert job, "the point runs inside a SLURM job"
    # what SLURM does before a preemption or the time limit (the job's --signal=USR2@120): USR2 to its tasks
    r = subprocess.run(["scancel", "--signal=USR2", job], env=slurm, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # requeued; SLURM starts it again once the old credential expires (cred_expire=5 in cluster.sh; releasing
    # it earlier by hand races the revocation and SLURM fails the job)
    wait_for(lambda: "Restarts=1" in scontrol(slurm, "show", "job", job), f"job {job} requeued by submitit", 300, proc)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    assert "2 points, 2 finished, 0 failed" in out

    points = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/loracfg.json"))]
    assert len(points) == 2 and all(p["status"] == "finished" and p["slurm_job_id"] for p in points)
    assert len({p["slurm_job_id"] for p in points}) == 2
    # submitit's own log of the job: its USR2 handler ran after ours and requeued (array job ids are N_0)
    # (stderr has submitit's own handler once per catch; stdout repeats it through Hydra's logging)
    err = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.err"))
    assert err.count("Caught signal SIGUSR2") == 1 and "this job is preempted" in err, err[-3000:]
    log = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.out"))
    assert "Requeued job" in log and "Exiting gracefully after preemption/timeout" in log, log[-3000:]
    for p in points:
        m = json.loads((Path(p["run_dir"]) / "metrics.json").read_text())
        assert m["finished"] and m["global_step"] == 200 and m["cpu_threads"] == 1
        assert (Path(p["run_dir"]) / "adapter" / "adapter_model.safetensors").is_file()
    requeued = json.loads((Path(info["run_dir"]) / "metrics.json").read_text())
    [resumed] = requeued["resumed_from"]  # the checkpoint the USR2 handler saved, past checkpoint-20
    assert int(resumed.rsplit("-", 1)[1]) > 20
    assert [s for s, _ in requeued["train_loss_curve"]][:2] == [10, 20]  # the curve from before the requeue is kept


@pytest.mark.parametrize(("hardware", "gpus"), [("hardware=a10g", 1), ("hardware=a10g hardware.num_devices=4", 4),
                                                ("hardware=cpu", 0)])
def test_slurm_launcher_asks_for_the_hardware_groups_gpus(hardware, gpus):
    import yaml

    r = subprocess.run([sys.executable, str(ROOT / "train.py"), "hydra/launcher=slurm", *hardware.split(),
                        "--cfg", "all", "--resolve"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    launcher = yaml.safe_load(r.stdout)["hydra"]["launcher"]
    assert launcher["gpus_per_node"] == gpus and launcher["_target_"].endswith("SlurmLauncher")


def test_a_two_task_job_trains_data_parallel_and_resumes_every_rank_after_a_requeue(slurm, tmp_path):
    """hardware=cpu-2proc under hydra/launcher=slurm: one job of two tasks (tasks_per_node from the hardware
    group), each task one rank (rank, world size and rendezvous from SLURM's environment, no torchrun inside the
    job), preempted with USR2 after checkpoint-20: both ranks stop at one step, submitit requeues the job from
    rank 0, and both ranks resume from the same checkpoint."""
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=slurm", "hardware=cpu-2proc",
           "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=6", f"output_dir={tmp_path / 'runs'}",
           f"hydra.sweep.dir={sweep}", "schedule.max_steps=200", "schedule.num_train_epochs=null",
           "schedule.eval_strategy=no", "schedule.save_steps=10", "schedule.save_total_limit=null",
           "schedule.per_device_train_batch_size=4", "data.num_samples=640"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pointer = sweep / "0" / "loracfg.json"

    info = wait_for(lambda: running_with_checkpoint_20(pointer), "the two-task job running with checkpoint-20",
                    400, proc)
    job = info["slurm_job_id"]
    assert "NumTasks=2" in scontrol(slurm, "show", "job", job)
    r = subprocess.run(["scancel", "--signal=USR2", job], env=slurm, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "Restarts=1" in scontrol(slurm, "show", "job", job), f"job {job} requeued by submitit", 300, proc)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-4000:]
    assert "1 points, 1 finished, 0 failed" in out or "1 point, 1 finished, 0 failed" in out, out[-3000:]

    point = json.loads(pointer.read_text())
    assert point["status"] == "finished" and point["slurm_job_id"] == job
    m = json.loads((Path(point["run_dir"]) / "metrics.json").read_text())
    assert m["finished"] and m["global_step"] == 200
    assert (m["world_size"], m["strategy"], m["distributed_type"]) == (2, "ddp", "MULTI_CPU")
    [resumed] = m["resumed_from"]  # both ranks stopped at the same step and saved one checkpoint there
    assert int(resumed.rsplit("-", 1)[1]) > 20
    assert [s for s, _ in m["train_loss_curve"]][:2] == [10, 20]
    err = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.err"))
    assert err.count("Caught signal SIGUSR2") == 2, err[-3000:]  # one per task
    log = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.out"))
    assert "Not checkpointing nor requeuing since I am a slave (procid=1)" in log + err, (log + err)[-3000:]
    assert "Requeued job" in log, log[-3000:]
    tasks = {p.name.split("_log")[0].rsplit("_", 1)[1] for p in (sweep / ".submitit").glob("*/*_log.out")}
    assert tasks == {"0", "1"}  # submitit's per-task logs: two tasks ran
