"""Stage 1: Hydra composes the real conf/, and every value knows the file:line (or override) that set it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from loracfg.compiler.lint.compose import GROUPS, Composer, parent_key
from loracfg.compiler.lint.diagnostics import COMMAND_LINE

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def composer():
    with Composer(ROOT / "conf") as c:
        yield c


def _line_of(path: Path, prefix: str) -> int:
    return next(i + 1 for i, line in enumerate(path.read_text().splitlines()) if line.startswith(prefix))


def test_default_composition_has_every_group(composer):
    comp, diags = composer.compose()
    assert diags == []
    assert set(GROUPS) <= set(comp.config)
    assert comp.choices == {"model": "tiny-llama", "quant": "none", "lora": "r16", "schedule": "cosine",
                            "hardware": "cpu", "data": "tiny-patterns"}
    assert comp.config["lora"]["r"] == 16 and comp.config["schedule"]["learning_rate"] == pytest.approx(2e-4)


def test_values_point_at_the_option_file_line_that_set_them(composer):
    comp, _ = composer.compose(["lora=r64"])
    loc = comp.locate("lora.lora_alpha")
    assert loc.file == "conf/lora/r64.yaml"
    assert loc.line == _line_of(ROOT / "conf/lora/r64.yaml", "lora_alpha:")
    assert loc.col == len("lora_alpha: ") + 1
    assert comp.locate("model.linear_modules.k_proj").file == "conf/model/tiny-llama.yaml"
    assert comp.locate("seed").file == "conf/config.yaml"


def test_command_line_overrides_point_at_the_override(composer):
    overrides = ["lora=r8", "schedule.learning_rate=3e-4"]
    comp, _ = composer.compose(overrides)
    loc = comp.locate("schedule.learning_rate")
    assert loc.file == COMMAND_LINE
    assert loc.col == len("lora=r8 schedule.learning_rate=") + 1
    assert comp.from_command_line("schedule.learning_rate") and not comp.from_command_line("lora.r")


def test_missing_option_lists_the_available_ones(composer):
    comp, diags = composer.compose(["lora=r166"])
    assert comp is None and [d.code for d in diags] == ["C002"]
    assert "dora-r16, r16, r64, r8, rslora-r64" in diags[0].message and diags[0].fix == "lora=r16"
    assert diags[0].location.file == COMMAND_LINE
    _, far = composer.compose(["lora=xyz"])
    assert far[0].fix is None  # nothing close: no made-up suggestion


def test_override_of_unknown_key_names_close_keys(composer):
    comp, diags = composer.compose(["schedule.learning_rat=1e-4"])
    assert [d.code for d in diags] == ["C003"]
    assert "'schedule.learning_rate'" in diags[0].message
    assert diags[0].fix == "schedule.learning_rate=1e-4"


def test_unparsable_override(composer):
    _, diags = composer.compose(["lora=r8", "schedule.learning_rate=[1e-4,"])
    assert [d.code for d in diags] == ["C004"]
    assert diags[0].location.col == len("lora=r8 ") + 1


def test_user_config_dir_is_composed_with_the_shipped_groups(tmp_path):
    (tmp_path / "lora").mkdir()
    mine = tmp_path / "lora" / "my-r32.yaml"
    mine.write_text("defaults:\n  - r16\n  - _self_\nr: 32\nlora_alpha: 64\n")
    with Composer(tmp_path) as c:
        comp, diags = c.compose(["lora=my-r32", "model=mistral-7b"])
        assert diags == []
        assert comp.config["lora"]["r"] == 32 and comp.config["lora"]["lora_dropout"] == 0.05
        assert comp.config["model"]["config"]["sliding_window"] == 4096
        assert Path(comp.locate("lora.r").file).resolve() == mine
        assert comp.locate("lora.lora_dropout").file.endswith("conf/lora/r16.yaml")
        assert "my-r32" in c.options("lora") and c.options("lora", own_only=True) == ["my-r32"]


def test_user_option_shadows_a_shipped_one(tmp_path):
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "r16.yaml").write_text("defaults:\n  - r8\n  - _self_\nlora_dropout: 0.2\n")
    with Composer(tmp_path) as c:
        comp, _ = c.compose()
    assert comp.config["lora"]["r"] == 8 and comp.config["lora"]["lora_dropout"] == 0.2


def test_malformed_yaml_is_located(tmp_path):
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "broken.yaml").write_text("r: 8\ntarget_modules: [q_proj, v_proj\nbias: none\n")
    with Composer(tmp_path) as c:
        comp, diags = c.compose(["lora=broken"])
    assert comp is None and [d.code for d in diags] == ["C001"]
    assert Path(diags[0].location.file).resolve() == tmp_path / "lora" / "broken.yaml"
    assert diags[0].location.line >= 2


def test_missing_option_in_the_users_defaults_list_points_at_it(tmp_path):
    (tmp_path / "config.yaml").write_text("defaults:\n  - model: tiny-llama\n  - lora: r99\n  - _self_\n")
    with Composer(tmp_path) as c:
        _, diags = c.compose()
    assert [d.code for d in diags] == ["C002"]
    assert diags[0].location.line == 3 and "Available options in 'lora'" in diags[0].message


def test_composer_restores_a_running_hydra(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        with Composer(tmp_path):
            pass
        assert GlobalHydra.instance().is_initialized()


@pytest.mark.parametrize("key,parent", [("a.b[2]", "a.b"), ("a.b", "a"), ("a", ""), ("a[0].b", "a[0]")])
def test_parent_key(key, parent):
    assert parent_key(key) == parent


def _each_option_equals_hydra(c: Composer, options: list[tuple[str, str]]) -> None:
    base, diags = c.compose()
    assert diags == []
    batched = c.compose_each_option(options, base)
    assert [o for o, _, _ in batched] == [(f"{g}={o}",) for g, o in options]
    for (overrides, comp, diags), (g, o) in zip(batched, options):
        real, real_diags = c.compose(overrides)
        assert comp.config == real.config, overrides
        assert comp.choices == real.choices == {**base.choices, g: o}
        assert [d.message for d in diags] == [d.message for d in real_diags]
        assert comp.origins == real.origins  # provenance is Hydra's own defaults list either way


def test_each_option_batched_equals_composing_each_with_hydra(composer, monkeypatch):
    import loracfg.compiler.lint.compose as compose_module

    options = [(g, o) for g in GROUPS for o in composer.options(g)]
    calls = []
    real = compose_module.hydra_compose
    monkeypatch.setattr(compose_module, "hydra_compose", lambda *a, **k: calls.append(a) or real(*a, **k))
    base, _ = composer.compose()
    calls.clear()
    composer.compose_each_option(options, base)
    assert len(calls) == 1, "all shipped options must go through the one batched Hydra compose"
    monkeypatch.undo()
    _each_option_equals_hydra(composer, options)


def test_each_option_with_extending_and_package_header_files(tmp_path):
    (tmp_path / "lora").mkdir()
    (tmp_path / "schedule").mkdir()
    (tmp_path / "lora" / "my-r32.yaml").write_text("defaults:\n  - r16\n  - _self_\nr: 32\nlora_alpha: ${lora.r}\n")
    (tmp_path / "schedule" / "odd.yaml").write_text(
        "# @package schedule\ndefaults:\n  - linear\n  - _self_\nlearning_rate: 1.0e-4\n")
    with Composer(tmp_path) as c:
        _each_option_equals_hydra(c, [("lora", "my-r32"), ("schedule", "odd"), ("model", "bert-base")])


def test_each_option_when_the_primary_config_writes_into_a_group(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "defaults:\n  - model: tiny-llama\n  - quant: none\n  - lora: r16\n  - schedule: cosine\n"
        "  - hardware: cpu\n  - data: tiny-patterns\n  - _self_\nseed: 1\noutput_dir: o\nlora:\n  lora_dropout: 0.2\n")
    with Composer(tmp_path) as c:
        _each_option_equals_hydra(c, [("lora", "r64"), ("lora", "r8")])
        base, _ = c.compose()
        assert [comp.config["lora"]["lora_dropout"] for _, comp, _ in c.compose_each_option([("lora", "r64")], base)] \
            == [0.2]


@pytest.mark.parametrize("files, lint_args, where, cycle", [
    ({"selfref": "defaults:\n  - selfref\n  - _self_\nr: 8\n"}, ["conf/lora/selfref.yaml"], "conf/lora/selfref.yaml:2:5",
     "lora/selfref -> lora/selfref"),
    ({"a": "defaults:\n  - b\n  - _self_\n", "b": "defaults:\n  - a\n  - _self_\n"}, ["lora=b"], "conf/lora/b.yaml:2:5",
     "lora/b -> lora/a -> lora/b"),
    ({"a": "defaults:\n  - b\n  - _self_\n", "b": "defaults:\n  - a\n  - _self_\n"}, ["--exit-zero", "lora=a"],
     "conf/lora/a.yaml:2:5", "lora/a -> lora/b -> lora/a")])
def test_defaults_lists_that_name_each_other_are_a_cycle_not_a_recursion_error(tmp_path, files, lint_args, where,
                                                                               cycle):
    (tmp_path / "conf" / "lora").mkdir(parents=True)
    for name, text in files.items():
        (tmp_path / "conf" / "lora" / f"{name}.yaml").write_text(text)
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "lint", *lint_args], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert "Traceback" not in r.stderr and "RecursionError" not in r.stdout + r.stderr, r.stderr[-2000:]
    assert r.returncode == (0 if "--exit-zero" in lint_args else 1)
    assert f"{where}: C007 [error] the defaults lists form a cycle: {cycle}" in r.stdout, r.stdout


def _bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, c in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{c}: &{c} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name, text, where, what", [
    ("bomb", _bomb(), "conf/lora/bomb.yaml:9:4", "its aliases expand to 490,329,064 nodes (at most 10,000)"),
    ("deep", "r: " + "[" * 20000 + "]" * 20000 + "\n", "conf/lora/deep.yaml:1:103",
     "the YAML is nested more than 100 levels deep"),
    # nested by indentation alone (no brackets): Hydra's loader ran out of stack and lint raised a RecursionError
    ("indented", "".join(f"{' ' * i}k{i}:\n" for i in range(600)), "conf/lora/indented.yaml:101:101",
     "the YAML is nested more than 100 levels deep"),
    ("values", "r: [" + "1," * 20_000 + "1]\n", "conf/lora/values.yaml:1:19999",
     "the file holds more than 10,000 values"),
    ("huge", "r: 16\n" + "# padding\n" * 110_000, "conf/lora/huge.yaml:1:1", "the file is 1,100,006 bytes")])
def test_hostile_yaml_is_refused_before_hydra_reads_it(tmp_path, name, text, where, what):
    """Linting untrusted files never hangs: a 342-byte alias bomb ran for minutes before this check."""
    (tmp_path / "conf" / "lora").mkdir(parents=True)
    (tmp_path / "conf" / "lora" / f"{name}.yaml").write_text(text)
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "lint"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)  # a guard against the hang, not a speed assertion
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"{where}: C001 [error] not loaded: {what}" in r.stdout, r.stdout
