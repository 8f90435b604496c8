"""Data parallelism on this machine: hardware=cpu-2proc runs two real processes (torch.distributed.run, gloo),
the model really wrapped in DistributedDataParallel and every batch really split between them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from loracfg.compiler.pipeline import compile_run  # noqa: E402
from loracfg.runner.errors import RunError  # noqa: E402
from loracfg.runner.launch import command, join_slurm_tasks, launch, needs_launch  # noqa: E402

from tests.waiting import checkpoint_complete, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
# 24 optimizer steps of 8 sequences: per device 4 on two processes, or 8 on one
SHORT = ["schedule.max_steps=24", "schedule.num_train_epochs=null", "schedule.logging_steps=2",
         "schedule.eval_strategy=no", "schedule.save_steps=6", "schedule.save_total_limit=null",
         "schedule.gradient_accumulation_steps=1", "data.num_samples=400",
         "data.max_length=64", "lora.lora_dropout=0.0"]  # dropout masks would differ between the two layouts
TWO = ["hardware=cpu-2proc", "schedule.per_device_train_batch_size=4"]
ONE = ["hardware=cpu", "schedule.per_device_train_batch_size=8"]
# Two processes of 4 against one of 8: the same sequences in each step (accelerate splits the one seeded sampler's
# batches), the loss averaged over the tokens of all 8 either way; what differs is float summation order in the
# gradient all-reduce. Measured: 8.5e-8 at most over 12 logged points. Ranks that train alone (no all-reduce, as
# after an evaluation before training until the runner undid it) are 7e-3 apart by step 10.
LOSS_RTOL = 1e-5


def plan_of(tmp_path: Path, *overrides: str) -> dict:
    compiled = compile_run([f"output_dir={tmp_path / 'out'}", *overrides], CONF, build_objects=False)
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    return compiled.plan


def test_a_two_process_plan_says_how_it_is_launched(tmp_path):
    plan = plan_of(tmp_path, *SHORT, *TWO)
    ta = plan["training"]["TrainingArguments"]
    assert ta["ddp_backend"] == "gloo" and ta["ddp_find_unused_parameters"] is False and ta["use_cpu"] is True
    assert plan["resolved"]["world_size"] == 2 and plan["resolved"]["effective_batch_size"] == 8
    decided = {d["argument"]: d["value"] for d in plan["decisions"]}
    assert decided["launch.nproc_per_node"] == 2
    assert needs_launch(plan) and not needs_launch(plan_of(tmp_path, *SHORT, *ONE))
    cmd = command("plan.json", 2)
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert "ddp_backend" not in plan_of(tmp_path, *SHORT, *ONE)["training"]["TrainingArguments"]


def test_inside_a_launch_the_plan_is_not_launched_again(tmp_path, monkeypatch):
    plan = plan_of(tmp_path, *SHORT, *TWO)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not needs_launch(plan)


TORCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _slurm_step(monkeypatch, procid: int, tasks: int, nodes: int = 1, nodelist: str = "gpu[003-004]") -> None:
    for k in TORCH_ENV:  # set then deleted: monkeypatch records them and removes what join_slurm_tasks sets
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_PROCID", str(procid))
    monkeypatch.setenv("SLURM_LOCALID", str(procid % (tasks // nodes)))
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", str(tasks))
    monkeypatch.setenv("SLURM_STEP_NUM_NODES", str(nodes))
    monkeypatch.setenv("SLURM_STEP_NODELIST", nodelist)


def test_a_task_of_a_slurm_step_joins_as_its_rank(tmp_path, monkeypatch):
    plan = plan_of(tmp_path, *SHORT, "hardware=cpu-2proc", "hardware.num_devices=2", "hardware.num_nodes=2")
    _slurm_step(monkeypatch, procid=3, tasks=4, nodes=2)
    assert join_slurm_tasks(plan) and not needs_launch(plan)
    assert {k: os.environ[k] for k in TORCH_ENV} == {
        "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "gpu003",
        "MASTER_PORT": str(20000 + 4242)}
    assert not join_slurm_tasks(plan)  # joined once: WORLD_SIZE is set


def test_a_slurm_step_of_the_wrong_size_or_none_at_all(tmp_path, monkeypatch):
    plan = plan_of(tmp_path, *SHORT, *TWO)
    _slurm_step(monkeypatch, procid=0, tasks=4)
    with pytest.raises(RunError, match="4 tasks but the plan's world size is 2"):
        join_slurm_tasks(plan)
    _slurm_step(monkeypatch, procid=0, tasks=1)  # a batch script's own shell, or one task: torchrun starts them
    assert not join_slurm_tasks(plan) and needs_launch(plan)


def test_more_than_one_node_outside_slurm_is_refused_before_anything_starts(tmp_path):
    plan = plan_of(tmp_path, *SHORT, *TWO, "hardware.num_nodes=2")
    with pytest.raises(RunError, match="num_nodes is 2.*SLURM"):
        launch(plan)
    assert not (tmp_path / "out").exists()


def _compare_plans(rank: int, port: int, hashes: list[str], results) -> None:
    import torch.distributed as dist
    from loracfg.runner.run import _same_plan_on_every_rank

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=len(hashes))
    try:
        _same_plan_on_every_rank({"hash": hashes[rank]})
        results.put((rank, "same"))
    except RunError as e:
        results.put((rank, str(e)))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("hashes", [["sha256:aa", "sha256:aa"], ["sha256:aa", "sha256:bb"]])
def test_ranks_that_disagree_on_the_plan_all_stop_naming_the_odd_rank(hashes):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_compare_plans, args=(r, port, hashes, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    if hashes[0] == hashes[1]:
        assert got == {0: "same", 1: "same"}
    else:
        assert all("disagree on the plan" in m and "rank 1: sha256:bb" in m for m in got.values()), got


def _train(tmp_path: Path, name: str, *overrides: str, **kw) -> subprocess.Popen:
    given = {o.split("=", 1)[0] for o in overrides}
    base = [o for o in SHORT if o.split("=", 1)[0] not in given]
    return subprocess.Popen([sys.executable, "train.py", *base, *overrides, f"output_dir={tmp_path / name}",
                             f"hydra.run.dir={tmp_path / (name + '-hydra')}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _metrics(tmp_path: Path, name: str) -> dict:
    (path,) = (tmp_path / name).glob("*/metrics.json")
    return json.loads(path.read_text())


@pytest.mark.slow
def test_two_processes_train_and_match_one_process_with_twice_the_batch(tmp_path):
    two = _train(tmp_path, "two", *TWO)
    out, err = two.communicate(timeout=900)
    assert two.returncode == 0, err[-4000:]
    assert out.count("trainable params:") == 1 and out.count("finished ") == 1, out[-2000:]  # rank 0 prints
    one = _train(tmp_path, "one", *ONE)
    _, err1 = one.communicate(timeout=900)
    assert one.returncode == 0, err1[-4000:]
    m2, m1 = _metrics(tmp_path, "two"), _metrics(tmp_path, "one")
    assert m2["world_size"] == 2 and m2["distributed_type"] == "MULTI_CPU", (m2["world_size"], m2["distributed_type"])
    assert (m2["strategy"], m1["strategy"]) == ("ddp", "single")
    assert m1["world_size"] == 1 and m1["distributed_type"] == "NO"
    assert m2["finished"] and m2["global_step"] == m1["global_step"] == 24
    assert m2["train_tokens"] == m1["train_tokens"] and m2["tokens_per_second"] > 0
    steps2, losses2 = zip(*m2["train_loss_curve"])
    steps1, losses1 = zip(*m1["train_loss_curve"])
    assert steps2 == steps1
    assert losses2[0] > losses2[-1]  # it learns
    worst = max(abs(a - b) / b for a, b in zip(losses2, losses1))
    print(f"largest relative difference of the two loss curves: {worst:.2e}")
    assert worst < LOSS_RTOL, list(zip(losses2, losses1))
    (run,) = (tmp_path / "two").glob("*/")
    assert (run / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_kill_9_of_the_whole_job_then_rerun_resumes_every_rank(tmp_path):
    longer = "schedule.max_steps=60"  # time to kill it between checkpoints
    proc = _train(tmp_path, "two", *TWO, longer, start_new_session=True)
    checkpoint = wait_for(lambda: [p for p in (tmp_path / "two").glob("*/checkpoint-12") if checkpoint_complete(p)],
                          "checkpoint-12", 600, proc)[0]
    os.killpg(proc.pid, signal.SIGKILL)  # the app, torch.distributed.run and both ranks at once
    proc.wait()
    first = _metrics(tmp_path, "two")
    assert first["finished"] is False
    again = _train(tmp_path, "two", *TWO, longer)
    out, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-4000:]
    m = _metrics(tmp_path, "two")
    assert m["finished"] and m["global_step"] == 60 and m["world_size"] == 2
    assert m["resumed_from"], (m, out[-3000:], sorted(p.name for p in checkpoint.parent.iterdir()))
    resumed = int(m["resumed_from"][-1].rsplit("-", 1)[1])
    assert len(m["resumed_from"]) == 1 and resumed >= 12 and resumed % 6 == 0, (m["resumed_from"], str(checkpoint))
    assert out.count("resuming from") == 1, out[-2000:]


@pytest.mark.slow
def test_sigterm_to_the_app_checkpoints_every_rank_once_and_a_rerun_resumes(tmp_path):
    """What SLURM does before preempting: the signal reaches the app, which passes it to the launcher and its
    workers; all ranks stop at the same step, one checkpoint is written there, and the app exits 128+15."""
    # with gradient checkpointing: on a PeftModel DDP then fails ("Expected to mark a variable ready only once")
    # unless find_unused_parameters is off, which the Trainer does only for a PreTrainedModel; the plan does it
    longer = "schedule.max_steps=60 schedule.gradient_checkpointing=true".split()
    proc = _train(tmp_path, "two", *TWO, *longer, "schedule.save_steps=50")
    # rank 0 writes metrics.json after the initial evaluation, right before training starts
    wait_for(lambda: list((tmp_path / "two").glob("*/metrics.json")), "the run's metrics.json", 600, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM, err[-4000:]
    stopped = _metrics(tmp_path, "two")
    assert stopped["finished"] is False and 0 < stopped["global_step"] < 60, stopped.get("global_step")
    assert stopped["stopped_by"] == "SIGTERM"  # what `loracfg runs` shows as "stopped at step N (SIGTERM)"
    (run,) = (tmp_path / "two").glob("*/")
    assert sorted(p.name for p in run.glob("checkpoint-*")) == [f"checkpoint-{stopped['global_step']}"]
    pointer = json.loads((tmp_path / "two-hydra" / "loracfg.json").read_text())
    assert pointer["status"] == "interrupted"
    again = _train(tmp_path, "two", *TWO, *longer, "schedule.save_steps=50")
    out, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-4000:]
    m = _metrics(tmp_path, "two")
    assert m["finished"] and m["global_step"] == 60
    assert m["resumed_from"] == [str(run / f"checkpoint-{stopped['global_step']}")]


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of the worker with RANK=rank below ``parent`` (the app -> torch.distributed.run -> workers)."""
    for status in Path("/proc").glob("[0-9]*/environ"):
        try:
            env = status.read_bytes().split(b"\0")
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if b"loracfg.runner" in cmdline and f"RANK={rank}".encode() in env and \
                any(e.startswith(b"TORCHELASTIC_RUN_ID=") for e in env) and b"torch.distributed.run" not in cmdline:
            if _descends(int(status.parent.name), parent):
                return int(status.parent.name)
    return None


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


@pytest.mark.slow
def test_a_rank_that_dies_stops_the_others_with_a_message_naming_it(tmp_path):
    proc = _train(tmp_path, "two", *TWO, "schedule.max_steps=60")
    wait_for(lambda: [p for p in (tmp_path / "two").glob("*/checkpoint-6") if checkpoint_complete(p)],
             "checkpoint-6", 600, proc)
    victim = wait_for(lambda: _rank_pid(proc.pid, 1), "rank 1's process", 60, proc)
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=180)  # not gloo's collective timeout: the launcher stops rank 0
    assert proc.returncode == 1, err[-3000:]
    assert "rank 1 died (killed by SIGKILL" in err and "re-run resumes from" in err, err[-3000:]
    (run,) = (tmp_path / "two").glob("*/")
    named = err.split("re-run resumes from ", 1)[1].split()[0]
    assert checkpoint_complete(Path(named)) and Path(named).parent == run  # a checkpoint being written is skipped
    assert json.loads((run / "metrics.json").read_text())["finished"] is False
