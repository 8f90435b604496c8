"""``LintSweep``, the Hydra callback that conf/config.yaml names in ``hydra.callbacks``.

In ``on_multirun_start`` it lints each point and stops the sweep (nothing launched) if any has an
error, naming the point; it also reports points whose run already finished. In ``on_multirun_end``
it counts the finished and failed points.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from loracfg.compiler.sweep.points import (
    enumerable,
    expand,
    main_config_dir,
    preflight,
    run_overrides,
    sweep_overrides,
)
from omegaconf import DictConfig


class LintSweep(Callback):
    """Hydra callback (conf/config.yaml ``hydra.callbacks``): lint the whole sweep before launching it."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = sweep_overrides(config)
        points = expand(overrides)
        ok, finished = preflight(points, main_config_dir(config.hydra))
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
        from loracfg.compiler.sweep.report import collect

        rows = collect(Path(config.hydra.sweep.dir))
        failed = [r for r in rows if r["status"] == "failed"]
        print(f"loracfg: sweep {config.hydra.sweep.dir}: {len(rows)} points, "
              f"{sum(r['status'] == 'finished' for r in rows)} finished, {len(failed)} failed", file=sys.stderr)
        for r in failed:
            print(f"  failed: {r['point']}: {r.get('error')}", file=sys.stderr)
