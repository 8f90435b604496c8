"""Sweeps are plain Hydra multirun; this lints every point before Hydra launches anything.

Hydra's compose API cannot expand sweep syntax (``schedule.learning_rate=1e-4,2e-4``), so the
points are expanded with Hydra's own override parser, the way its BasicSweeper does (the
cartesian product of every sweep override's values). ``LintSweep`` is a Hydra callback: in
``on_multirun_start`` it lints each point and stops the sweep (nothing launched) if any has an
error, naming the point; it also reports points whose run already finished.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

POINTER = "loracfg.json"  # written by train.py into each Hydra job directory


def expand(overrides: Sequence[str]) -> list[list[str]]:
    """Every point of a sweep: each sweep override (a,b,c / range / choice) expanded, then the product.

    A continuous ``interval(lo, hi)`` (what Optuna samples from) has no points to enumerate: its two
    bounds stand in for it, so both ends of the search space are linted."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    axes = []
    for ov in parsed:
        key = ov.get_key_element()
        if ov.is_interval_sweep():
            interval = ov.value()
            axes.append([f"{key}={interval.start}", f"{key}={interval.end}"])
        elif ov.is_sweep_override():
            axes.append([f"{key}={value}" for value in ov.sweep_string_iterator()])
        else:
            axes.append([ov.input_line])
    return [list(point) for point in itertools.product(*axes)]


def enumerable(overrides: Sequence[str]) -> bool:
    """Whether expand() gives the sweep's real points (no interval searched by a sampler)."""
    return not any(ov.is_interval_sweep() for ov in OverridesParser.create().parse_overrides(list(overrides)))


def sweep_overrides(config: DictConfig) -> list[str]:
    """The sweep as Hydra's BasicSweeper sees it: hydra.sweeper.params first, then the command line."""
    params = config.hydra.sweeper.get("params") or {}
    return [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)


def run_overrides(point: Sequence[str]) -> list[str]:
    """A point's overrides that shape the run (not Hydra's own settings or the sweep selector)."""
    return [o for o in point if not o.lstrip("+~").startswith(("hydra.", "hydra/", "sweep="))]


def main_config_dir(config: DictConfig) -> Path:
    for source in config.hydra.runtime.config_sources:
        if source.provider == "main" and source.schema == "file":
            return Path(source.path)
    from compiler.resources import shipped_conf_dir

    return shipped_conf_dir()


def preflight(points: list[list[str]], config_dir: Path, out=sys.stderr) -> tuple[bool, list[Path | None]]:
    """Lint every point; (whether all are free of errors, each point's finished run dir or None)."""
    from compiler import plan as plan_module
    from compiler import report
    from compiler.compose import Composer
    from compiler.lint import LintResult, check_composition, finalize
    from compiler.settings import load as load_settings

    settings = load_settings()
    ok, finished = True, []
    with Composer(config_dir) as composer:
        for point in points:
            run = run_overrides(point)
            comp, diags = check_composition(composer, run)
            result = finalize(diags, settings, LintResult(compositions=1))
            if result.has_errors:
                ok = False
                print(f"sweep point {' '.join(run) or '(defaults)'} has errors:", file=out)
                print(report.render(result, "text"), file=out)
                finished.append(None)
                continue
            built = plan_module.build(comp) if comp is not None else None
            run_dir = Path(built["training"]["TrainingArguments"]["output_dir"]) if built else None
            metrics = run_dir / "metrics.json" if run_dir else None
            done = bool(metrics and metrics.is_file() and json.loads(metrics.read_text()).get("finished"))
            finished.append(run_dir if done else None)
    return ok, finished


class LintSweep(Callback):
    """Hydra callback (conf/config.yaml ``hydra.callbacks``): lint the whole sweep before launching it."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = sweep_overrides(config)
        points = expand(overrides)
        ok, finished = preflight(points, main_config_dir(config))
        if not ok:
            print(f"loracfg: the sweep was not launched: fix the points above ({len(points)} points in all)",
                  file=sys.stderr)
            sys.exit(1)
        if not enumerable(overrides):
            print(f"loracfg: the search space lints clean at its bounds ({len(points)} corner points); each trial's "
                  f"run is skipped if it already finished", file=sys.stderr)
            return
        done = [(p, d) for p, d in zip(points, finished) if d is not None]
        for point, run_dir in done:
            print(f"loracfg: point {' '.join(run_overrides(point))} already finished ({run_dir}); it will be "
                  f"skipped", file=sys.stderr)
        if points and len(done) == len(points):
            print(f"loracfg: all {len(points)} points of this sweep already finished; nothing to launch",
                  file=sys.stderr)
            sys.exit(0)
        print(f"loracfg: {len(points)} sweep points lint clean; launching {len(points) - len(done)}", file=sys.stderr)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from compiler.sweep_report import collect

        rows = collect(Path(config.hydra.sweep.dir))
        failed = [r for r in rows if r["status"] == "failed"]
        print(f"loracfg: sweep {config.hydra.sweep.dir}: {len(rows)} points, "
              f"{sum(r['status'] == 'finished' for r in rows)} finished, {len(failed)} failed", file=sys.stderr)
        for r in failed:
            print(f"  failed: {r['point']}: {r.get('error')}", file=sys.stderr)
