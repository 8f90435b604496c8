"""``loracfg runs [OUTPUT_DIR]``: every run directory under a folder, one line each.

A run directory is one the runner wrote (``plan.json`` and ``metrics.json``), from a single run or a point of a
sweep alike. Its status comes from ``metrics.json``: finished; failed (with the error the runner recorded);
stopped at step N (a signal, or a process that is gone: a crash or ``kill -9``); running (its process is alive
on this host). Torch-free: it only reads JSON.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from loracfg.compiler.lint.yamlpos import value_at
from loracfg.runner.errors import RunError

# composed-config keys worth a column when they differ between the runs listed
KEYS = ("model.name_or_path", "lora.r", "lora.lora_alpha", "lora.use_dora", "quant.load_in_4bit",
        "schedule.learning_rate", "schedule.lr_scheduler_type", "schedule.per_device_train_batch_size",
        "schedule.gradient_accumulation_steps", "schedule.max_steps", "schedule.num_train_epochs",
        "hardware.num_devices", "data.format", "data.path", "seed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(metrics: dict[str, Any]) -> str:
    step = metrics.get("global_step", 0)
    if metrics.get("finished"):
        return "finished"
    if metrics.get("error"):
        return f"failed at step {step}: {metrics['error']}"
    if metrics.get("stopped_by"):
        return f"stopped at step {step} ({metrics['stopped_by']})"
    pid, host = metrics.get("pid"), metrics.get("host")
    if pid and host == socket.gethostname() and _alive(int(pid)):
        return "running"
    if pid and host and host != socket.gethostname():
        return f"running on {host} or stopped"
    return f"stopped at step {step} (process gone)"


def method(cfg: dict[str, Any]) -> str:
    lora, quant = cfg.get("lora", {}), cfg.get("quant", {})
    name = "DoRA" if lora.get("use_dora") else "LoRA"
    if quant.get("load_in_4bit"):
        name = "Q" + name
    elif quant.get("load_in_8bit"):
        name += " 8-bit"
    return f"{name} r={lora.get('r')}"


def _step_of_checkpoints(run_dir: Path) -> int:
    steps = [int(p.name.rsplit("-", 1)[1]) for p in run_dir.glob("checkpoint-*") if p.name.rsplit("-", 1)[1].isdigit()]
    return max(steps, default=0)


def collect(root: Path) -> list[dict[str, Any]]:
    """One record per run directory under ``root`` (``root`` itself may be one), newest first."""
    if not root.is_dir():
        raise RunError(f"'{root}' is not a directory; give the output_dir the runs went to (default: runs)")
    found = [p.parent for p in root.rglob("plan.json") if (p.parent / "config.json").is_file()]
    rows = []
    for run_dir in sorted(set(found)):
        try:
            plan = json.loads((run_dir / "plan.json").read_text())
            metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
        except (OSError, json.JSONDecodeError) as e:
            rows.append({"run_id": run_dir.name, "run_dir": str(run_dir), "status": f"unreadable: {e}"})
            continue
        if not metrics.get("global_step"):
            metrics.setdefault("global_step", _step_of_checkpoints(run_dir))
        cfg = plan.get("config", {})
        rows.append({
            "run_id": plan.get("run_id", run_dir.name), "run_dir": str(run_dir),
            "model": cfg.get("model", {}).get("name_or_path"), "method": method(cfg),
            "status": status(metrics), "global_step": metrics.get("global_step"),
            "final_eval_loss": metrics.get("final_eval_loss"), "wall_time_s": metrics.get("wall_time_s"),
            "started_unix": metrics.get("started_unix"),
            "settings": {k: value_at(cfg, k) for k in KEYS},
        })
    rows.sort(key=lambda r: -(r.get("started_unix") or 0))
    return rows


def differing(rows: list[dict[str, Any]]) -> list[str]:
    return [k for k in KEYS if len({json.dumps(r.get("settings", {}).get(k)) for r in rows}) > 1]


def render(rows: list[dict[str, Any]]) -> str:
    """A table: run id, model, method, the settings that differ between the runs, eval loss, wall time, status."""
    if not rows:
        return "no runs found"
    keys = differing(rows)
    table = [["run", "model", "method", *[k.split(".")[-1] for k in keys], "eval loss", "wall s", "status"]]
    for r in rows:
        s = r.get("settings", {})
        loss, wall = r.get("final_eval_loss"), r.get("wall_time_s")
        table.append([r["run_id"], str(r.get("model")), str(r.get("method")), *[str(s.get(k)) for k in keys],
                      f"{loss:.4f}" if isinstance(loss, (int, float)) else "-",
                      f"{wall:.0f}" if isinstance(wall, (int, float)) else "-", r["status"]])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    return "\n".join("  ".join([c.ljust(w) for c, w in zip(row, widths)] + [row[-1]]) for row in table)
