"""Starting a data-parallel run: one process per device through PyTorch's own launcher.

When a plan wants more than one process (``resolved.world_size``, from ``hardware.num_devices``) and this
process is not already one of a distributed launch (torchrun, or tasks that set ``WORLD_SIZE``), the
training app and ``python -m loracfg.runner PLAN`` hand the plan to ``torch.distributed.run`` (the code
behind ``torchrun``: rendezvous on this host, a restart-free agent that stops every worker when one
dies) with ``--nproc_per_node`` processes, each running ``python -m loracfg.runner PLAN``. Every process
trains the same plan; rank 0 alone writes the run directory. torchrun rather than ``accelerate launch``:
the Trainer already builds its accelerate state from torchrun's environment, and torchrun needs no
accelerate config file.

Under SLURM the job's tasks are the processes (``hydra/launcher=slurm`` asks for ``num_devices`` tasks per
node and ``num_nodes`` nodes; ``srun`` starts them): each task takes its rank, world size and rendezvous
address from SLURM's environment (``join_slurm_tasks``) and no launcher runs inside the job.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from typing import Any

from loracfg.compiler.files import write_json
from loracfg.runner.errors import RunError


def inside_launch() -> bool:
    """This process is one of several that a launcher started (torchrun sets WORLD_SIZE and RANK)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def die_with_launcher() -> None:
    """In a worker: be killed when torch.distributed.run is. It starts each worker in a session of its own, so
    a ``kill -9`` of the job's process group (or of the agent) left the workers training on, writing the
    run directory that the next run resumes from (found by the kill-and-resume test). Linux's
    ``PR_SET_PDEATHSIG`` ties each worker's life to its parent's."""
    if not inside_launch() or not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1: PR_SET_PDEATHSIG


def slurm_tasks() -> int:
    """Tasks of the SLURM job step this process is one of (srun sets SLURM_STEP_NUM_TASKS; a batch script's own
    shell is not a step of several tasks, whatever --ntasks says); 1 outside one."""
    return int(os.environ.get("SLURM_STEP_NUM_TASKS", "1") or 1) if "SLURM_PROCID" in os.environ else 1


def _first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``gpu[003-010,017],cpu01`` -> ``gpu003``), as ``scontrol show
    hostnames`` expands it (asked where it exists; the common forms are expanded here otherwise)."""
    try:
        r = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and r.stdout.split():
            return r.stdout.split()[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    head = nodelist.split(",")[0] if "[" not in nodelist.split(",")[0] else nodelist[: nodelist.index("]") + 1]
    if "[" in head:
        prefix, ranges = head[:-1].split("[", 1)
        return prefix + ranges.split(",")[0].split("-")[0]
    return head


def join_slurm_tasks(plan: dict[str, Any]) -> bool:
    """In a SLURM step of several tasks, make this task one rank of the run: torch's ``env://`` variables
    (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR = the allocation's first host, MASTER_PORT
    from the job id, the same after a requeue) from SLURM's. True when it did; a step whose task count is not
    the plan's world size is a RunError."""
    tasks = slurm_tasks()
    if tasks <= 1 or "WORLD_SIZE" in os.environ:
        return False
    want = int(plan["resolved"].get("world_size", 1))
    hw = plan["config"]["hardware"]
    if tasks != want:
        raise RunError(f"this SLURM job step has {tasks} tasks but the plan's world size is {want} (hardware."
                       f"num_devices {hw['num_devices']} x num_nodes {hw.get('num_nodes', 1)}); ask SLURM for "
                       f"num_devices tasks per node on num_nodes nodes (hydra/launcher=slurm does)",
                       key="hardware.num_devices")
    nodes = int(os.environ.get("SLURM_STEP_NUM_NODES", os.environ.get("SLURM_NNODES", "1")))
    job = int(os.environ.get("SLURM_JOB_ID", "0") or 0)
    os.environ.update({
        "RANK": os.environ["SLURM_PROCID"],
        "WORLD_SIZE": str(tasks),
        "LOCAL_RANK": os.environ.get("SLURM_LOCALID", "0"),
        "LOCAL_WORLD_SIZE": str(tasks // max(nodes, 1)),
        "MASTER_ADDR": os.environ.get("MASTER_ADDR") or _first_host(
            os.environ.get("SLURM_STEP_NODELIST") or os.environ.get("SLURM_JOB_NODELIST") or "127.0.0.1"),
        "MASTER_PORT": os.environ.get("MASTER_PORT") or str(20000 + job % 40000),
    })
    return True


def needs_launch(plan: dict[str, Any]) -> bool:
    return int(plan["resolved"].get("world_size", 1)) > 1 and not inside_launch()


def command(plan_path: str, processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "loracfg.runner", plan_path]


def _tee(stream: Any, tail: bytearray, keep: int = 64 * 1024) -> None:
    """Copy the launcher's stderr through to ours as it comes, keeping its last ``keep`` bytes."""
    out = getattr(sys.stderr, "buffer", None)
    for chunk in iter(lambda: stream.read1(65536), b""):
        if out is not None:
            out.write(chunk)
            out.flush()
        else:
            sys.stderr.write(chunk.decode(errors="replace"))
        tail.extend(chunk)
        del tail[:-keep]


_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(?P<rank>\d+).*?exitcode\s*:\s*(?P<code>-?\d+)", re.S)


def _failed_rank(text: str) -> str:
    """'rank 1 died (SIGKILL)' from torch.distributed.run's failure report (its "Root Cause" section)."""
    found = list(_ROOT_CAUSE.finditer(text))
    if not found:
        return "the distributed run failed (each rank's error is printed above)"
    m = found[-1]
    code = int(m["code"])
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    return f"rank {m['rank']} died ({how}; its error, if it printed one, is above)"


def start(plan: dict[str, Any], objects: Any = None) -> dict[str, Any]:
    """Train the plan from here: through torch.distributed.run when it wants more processes than this one is,
    else in this process (``objects``: its Hugging Face objects where the caller built them). Its metrics."""
    from loracfg.runner.run import run

    return launch(plan) if needs_launch(plan) else run(plan, objects=objects)


def launch(plan: dict[str, Any]) -> dict[str, Any]:
    """Run the plan in ``world_size`` processes on this host; the run's metrics, as ``run.run`` returns them."""
    from loracfg.runner.run import METRICS, PREEMPTION_SIGNALS, Preempted, run_dir_of

    processes = int(plan["resolved"]["world_size"])
    nodes = int(plan["config"]["hardware"].get("num_nodes") or 1)
    if nodes > 1:
        raise RunError(f"hardware.num_nodes is {nodes}: this machine can start its own {processes // nodes} processes "
                       f"only; run the job on SLURM (python train.py -m hydra/launcher=slurm ..., or srun with "
                       f"{processes // nodes} tasks per node, each running python -m loracfg.runner PLAN)",
                       key="hardware.num_nodes")
    if plan["config"]["hardware"]["accelerator"] == "cuda":
        import torch

        found = torch.cuda.device_count()
        if found < processes:
            raise RunError(f"hardware.num_devices is {processes} but this machine has {found} CUDA device(s); choose "
                           f"a hardware option with num_devices: {found} or fewer, or run where {processes} are",
                           key="hardware.num_devices")
    run_dir = run_dir_of(plan)
    run_dir.mkdir(parents=True, exist_ok=True)
    plan_path = run_dir / "plan.json"
    write_json(plan_path, plan)
    print(f"launching {processes} processes: {' '.join(command(str(plan_path), processes)[1:])}", flush=True)
    proc = subprocess.Popen(command(str(plan_path), processes), stderr=subprocess.PIPE)
    tail = bytearray()  # the end of what the launcher and the ranks printed, for the failed rank's name
    echo = threading.Thread(target=_tee, args=(proc.stderr, tail), daemon=True)
    echo.start()
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:  # SLURM's preemption signal reaches this process first
        received.append(signum)
        proc.send_signal(signal.SIGTERM if signum == signal.SIGUSR2 else signum)  # torchrun passes SIGTERM on

    handlers = {s: signal.signal(s, forward) for s in PREEMPTION_SIGNALS}
    try:
        code = proc.wait()
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        echo.join(timeout=10)
    metrics_path = run_dir / METRICS
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if received:
        previous = handlers.get(received[0])
        if callable(previous):  # e.g. submitit's SIGUSR2 handler: the checkpoint is saved, let it requeue the job
            previous(received[0], None)
        raise Preempted(received[0], int(metrics.get("global_step", 0)))
    if code != 0:
        from loracfg.runner.run import last_complete_checkpoint

        resume = last_complete_checkpoint(run_dir)
        again = f"a re-run resumes from {resume}" if resume else "no checkpoint was complete yet: a re-run starts over"
        raise RunError(f"{_failed_rank(tail.decode(errors='replace'))}; torch.distributed.run stopped the other "
                       f"ranks (exit {code}); {again}")
    return metrics
