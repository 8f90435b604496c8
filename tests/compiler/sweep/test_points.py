"""Sweep points come from Hydra's own override parser, and every one is linted before anything launches."""

from __future__ import annotations

import io
import json
from pathlib import Path

from loracfg.compiler.sweep.points import enumerable, expand, preflight

CONF = Path(__file__).resolve().parents[3] / "conf"


def test_expand_is_the_product_of_every_sweep_override():
    points = expand(["lora=r8,r16", "schedule.learning_rate=1e-4,2e-4,3e-4", "seed=1"])
    assert len(points) == 6
    assert points[0] == ["lora=r8", "schedule.learning_rate=0.0001", "seed=1"]
    assert ["lora=r16", "schedule.learning_rate=0.0003", "seed=1"] in points
    assert expand(["schedule.per_device_train_batch_size=range(2,8,2)"]) == [
        [f"schedule.per_device_train_batch_size={b}"] for b in (2, 4, 6)]
    assert expand(["lora=r8"]) == [["lora=r8"]]


def test_an_interval_searched_by_optuna_is_linted_at_its_bounds(tmp_path):
    overrides = ["schedule.learning_rate=tag(log, interval(5e-5, 5e-3))", "lora=r8,r16"]
    assert not enumerable(overrides) and enumerable(["lora=r8,r16"])
    points = expand(overrides)
    assert ["schedule.learning_rate=5e-05", "lora=r8"] in points and len(points) == 4
    out = io.StringIO()
    ok, _ = preflight([[*p, f"output_dir={tmp_path}"] for p in points], CONF, out)
    assert not ok
    assert f"sweep point schedule.learning_rate=0.005 lora=r8 output_dir={tmp_path} has errors:" in out.getvalue()


def test_preflight_names_the_bad_point_and_lints_them_all(tmp_path):
    out = io.StringIO()
    ok, finished = preflight(expand(["schedule.learning_rate=1e-4,5e-3,2e-2", f"output_dir={tmp_path}"]), CONF, out)
    text = out.getvalue()
    assert not ok and finished == [None, None, None]
    assert f"sweep point schedule.learning_rate=0.005 output_dir={tmp_path} has errors:" in text
    assert f"sweep point schedule.learning_rate=0.02 output_dir={tmp_path} has errors:" in text
    assert "0.0001 has errors" not in text


def test_preflight_knows_finished_points(tmp_path):
    points = expand([f"output_dir={tmp_path}", "lora=r8,r16"])
    ok, finished = preflight(points, CONF, io.StringIO())
    assert ok and finished == [None, None]
    from loracfg.compiler.lint.check import check_composition
    from loracfg.compiler.lint.compose import Composer
    from loracfg.compiler.plan import build as plan_module

    with Composer(CONF) as c:
        comp, _ = check_composition(c, points[1])  # validated: the plan of what lint passed
        run_dir = Path(plan_module.build(comp)["training"]["TrainingArguments"]["output_dir"])
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"finished": True}))
    assert preflight(points, CONF, io.StringIO())[1] == [None, run_dir]
