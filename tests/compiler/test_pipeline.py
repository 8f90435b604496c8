"""compile_run on a config a Hydra app composed already (train.py) gives what composing it again gives: the same
plan hash and the same diagnostics at the same file:line:col, so train.py composes once."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from hydra import compose, initialize_config_dir  # noqa: E402
from loracfg.compiler.lint.compose import register_search_path_plugin  # noqa: E402
from loracfg.compiler.pipeline import compile_run  # noqa: E402
from omegaconf import open_dict  # noqa: E402

CONF = Path(__file__).resolve().parents[2] / "conf"


def app_composed(overrides: list[str]):
    """What train.py's main receives: Hydra's cfg (its hydra node removed) and the runtime choices."""
    register_search_path_plugin()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


@pytest.mark.parametrize("overrides", [
    [], ["lora=r64", "schedule=linear", "data=tiny-chat", "schedule.learning_rate=1e-4"],
    ["quant=nf4", "hardware=a10g"], ["lora.r=8", "lora.lora_alpha=64"],
    ["data=tiny-chat", "data.packing=true", "data.packing_strategy=wrapped"], ["schedule.learning_rate=0.5"]])
def test_adopting_the_apps_composition_equals_composing_again(overrides):
    adopted, composed = compile_run(overrides, CONF, composed=app_composed(overrides)), compile_run(overrides, CONF)
    assert adopted.ok == composed.ok
    assert (adopted.plan or {}).get("hash") == (composed.plan or {}).get("hash")
    shown = [[(d.code, d.key, d.location, d.message, d.fix) for d in c.lint.diagnostics] for c in (adopted, composed)]
    assert shown[0] == shown[1]
    assert bool(shown[0]) == (overrides[-1:] in (["lora.lora_alpha=64"], ["data.packing_strategy=wrapped"],
                                                 ["schedule.learning_rate=0.5"]))
