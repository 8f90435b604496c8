"""Starting a data-parallel run: one process per device through PyTorch's own launcher.

When a plan wants more than one process (``resolved.world_size``, from ``hardware.num_devices``) and this
process is not already one of a distributed launch (torchrun, or tasks that set ``WORLD_SIZE``), the
training app and ``python -m loracfg.runner PLAN`` hand the plan to ``torch.distributed.run`` (the code
behind ``torchrun``: rendezvous on this host, a restart-free agent that stops every worker when one
dies) with ``--nproc_per_node`` processes, each running ``python -m loracfg.runner PLAN``. Every process
trains the same plan; rank 0 alone writes the run directory. torchrun rather than ``accelerate launch``:
the Trainer already builds its accelerate state from torchrun's environment, and torchrun needs no
accelerate config file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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


def needs_launch(plan: dict[str, Any]) -> bool:
    return int(plan["resolved"].get("world_size", 1)) > 1 and not inside_launch()


def command(plan_path: str, processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "loracfg.runner", plan_path]


def launch(plan: dict[str, Any]) -> dict[str, Any]:
    """Run the plan in ``world_size`` processes on this host; the run's metrics, as ``run.run`` returns them."""
    from loracfg.runner.run import METRICS, PREEMPTION_SIGNALS, Preempted, run_dir_of

    processes = int(plan["resolved"]["world_size"])
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
    proc = subprocess.Popen(command(str(plan_path), processes))
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
    metrics_path = run_dir / METRICS
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if received:
        previous = handlers.get(received[0])
        if callable(previous):  # e.g. submitit's SIGUSR2 handler: the checkpoint is saved, let it requeue the job
            previous(received[0], None)
        raise Preempted(received[0], int(metrics.get("global_step", 0)))
    if code != 0:
        raise RunError(f"the distributed run failed (torch.distributed.run exited with {code}; each rank's error is "
                       f"printed above)")
    return metrics
