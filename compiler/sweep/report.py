"""``loracfg report SWEEP_DIR``: compare the points of a sweep (local or SLURM, finished or not).

Each Hydra job directory of the sweep holds ``loracfg.json`` (written by train.py: the point's
overrides, its run directory, its status); the run directory holds ``metrics.json``. The report
is a table (swept values, final train loss, best eval loss, steps, wall time, tokens/s; best point
marked) as Markdown and JSON, and one PNG with the loss curves of all points.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from loracfg.compiler.sweep.points import POINTER


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per point, in job order, with its status: finished, running, interrupted (stopped by a signal,
    resumable), failed, pending."""
    rows = []
    for pointer in sorted(sweep_dir.glob(f"*/{POINTER}"), key=lambda p: (len(p.parent.name), p.parent.name)):
        info = _load(pointer) or {}
        run_dir = Path(info["run_dir"]) if info.get("run_dir") else None
        metrics = (_load(run_dir / "metrics.json") if run_dir else None) or {}
        status = info.get("status", "pending")
        if metrics.get("finished"):
            status = "finished"
        elif status not in ("failed", "interrupted") and metrics:
            status = "running"
        evals = [loss for _, loss in metrics.get("eval_loss_curve", [])] + \
            [metrics[k] for k in ("final_eval_loss",) if metrics.get(k) is not None]
        train_curve = metrics.get("train_loss_curve", [])
        rows.append({
            "job": pointer.parent.name,
            "point": " ".join(info.get("overrides", [])),
            "overrides": info.get("overrides", []),
            "status": status,
            "error": info.get("error"),
            "slurm_job_id": info.get("slurm_job_id"),
            "run_dir": str(run_dir) if run_dir else None,
            "final_train_loss": train_curve[-1][1] if train_curve else None,
            "best_eval_loss": min(evals) if evals else None,
            "steps": metrics.get("global_step"),
            "wall_time_s": metrics.get("wall_time_s"),
            "tokens_per_second": metrics.get("tokens_per_second"),
            "train_loss_curve": train_curve,
            "eval_loss_curve": metrics.get("eval_loss_curve", []),
        })
    return rows


def swept_keys(rows: list[dict[str, Any]]) -> list[str]:
    values: dict[str, set[str]] = {}
    for r in rows:
        for o in r["overrides"]:
            if "=" in o:
                k, v = o.split("=", 1)
                values.setdefault(k.lstrip("+~"), set()).add(v)
    return [k for k, v in values.items() if len(v) > 1] or list(values)


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def write(sweep_dir: Path) -> dict[str, Any]:
    """Write report.md, report.json and loss_curves.png into the sweep directory; return the JSON data."""
    rows = collect(sweep_dir)
    if not rows:
        raise FileNotFoundError(f"no sweep points under {sweep_dir} (no */{POINTER}); point at a Hydra multirun "
                                f"directory of train.py")
    keys = swept_keys(rows)
    finished = [r for r in rows if r["status"] == "finished" and r["best_eval_loss"] is not None]
    best = min(finished, key=lambda r: r["best_eval_loss"]) if finished else None
    for r in rows:
        r["best"] = r is best
        r["swept"] = {k: v for o in r["overrides"] if "=" in o for k, v in [o.lstrip("+~").split("=", 1)] if k in keys}
    columns = [*keys, "final train loss", "best eval loss", "steps", "wall time (s)", "tokens/s", "status"]
    lines = [f"# Sweep {sweep_dir}", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in rows:
        status = r["status"] + (f": {r['error']}" if r["status"] == "failed" and r["error"] else "")
        cells = [r["swept"].get(k, "-") for k in keys] + [
            _fmt(r["final_train_loss"]), _fmt(r["best_eval_loss"]) + (" **best**" if r["best"] else ""),
            _fmt(r["steps"]), _fmt(r["wall_time_s"]), _fmt(r["tokens_per_second"]), status]
        lines.append("| " + " | ".join(cells) + " |")
    (sweep_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = {"sweep_dir": str(sweep_dir), "swept": keys, "best": best["point"] if best else None,
            "points": [{k: v for k, v in r.items() if k not in ("train_loss_curve", "eval_loss_curve")} for r in rows]}
    (sweep_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    data["curves"] = plot(rows, keys, sweep_dir / "loss_curves.png")
    return data


def plot(rows: list[dict[str, Any]], keys: list[str], path: Path) -> int:
    """One train-loss curve per point that has one (eval loss dashed, same colour); returns the curve count."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("the loss-curve plot needs matplotlib: pip install 'loracfg[report]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    curves = 0
    for r in rows:
        if not r["train_loss_curve"]:
            continue
        label = " ".join(f"{k}={r['swept'].get(k)}" for k in keys) + ("" if r["status"] == "finished" else
                                                                        f" ({r['status']})")
        steps, losses = zip(*r["train_loss_curve"])
        (line,) = ax.plot(steps, losses, label=label + (" (best)" if r.get("best") else ""))
        curves += 1
        if r["eval_loss_curve"]:
            es, el = zip(*r["eval_loss_curve"])
            ax.plot(es, el, linestyle="--", color=line.get_color(), alpha=0.7)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (train solid, eval dashed)")
    ax.set_title(f"{path.parent.name}: {curves} points")
    if curves:
        ax.legend(fontsize=8)
    if any(not math.isfinite(v) for r in rows for _, v in r["train_loss_curve"]):
        ax.set_yscale("symlog")
    fig.tight_layout()
    fig.savefig(path, metadata={"Description": f"loracfg loss curves: {curves} points"})
    plt.close(fig)
    return curves
