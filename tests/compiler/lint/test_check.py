"""The linter end to end, through the real ``loracfg`` command line."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from loracfg.compiler.lint.check import lint
from loracfg.compiler.lint.compose import GROUPS
from loracfg.compiler.lint.rules import ALL_CODES
from loracfg.compiler.settings import SettingsError, load

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")


def loracfg(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_shipped_conf_lints_clean():
    r = loracfg("lint")
    assert r.returncode == 0, r.stdout + r.stderr
    n_options = sum(1 for g in GROUPS for _ in (ROOT / "conf" / g).glob("*.yaml"))
    assert f"in {n_options - len(GROUPS) + 1} composition(s)" in r.stdout  # default + each non-default option
    assert "Traceback" not in r.stderr


def test_console_script_is_installed():
    exe = shutil.which("loracfg", path=str(Path(sys.executable).parent))
    assert exe, "the loracfg console script is not installed next to this Python"
    r = subprocess.run([exe, "lint", "conf/config.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "All checks passed in 1 composition(s)." in r.stdout


def test_ruff_style_text_output_and_exit_1():
    r = loracfg("lint", "lora=r64", "schedule.learning_rate=5e-3")
    assert r.returncode == 1
    first = r.stdout.splitlines()[0]
    assert first.startswith("<command line>:1:") and " L001 [error] " in first
    assert "   key: schedule.learning_rate" in r.stdout
    assert "  help: schedule.learning_rate=2e-4" in r.stdout


def test_warnings_alone_exit_0():
    r = loracfg("lint", "schedule.weight_decay=0.3")
    assert r.returncode == 0 and "L007 [warning]" in r.stdout


def test_exit_zero_reports_errors_and_exits_0():
    r = loracfg("lint", "--exit-zero", "schedule.learning_rate=5e-3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert " L001 [error] " in r.stdout and "1 error(s)" in r.stdout


def test_a_composition_hydra_refuses_is_C007_at_the_defaults_list(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(
        "defaults:\n  - model: tiny-llama\n  - model: bert-base\n  - _self_\nseed: 1\noutput_dir: o\n")
    r = loracfg("lint", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "conf/config.yaml:1:1: C007 [error] Hydra could not compose the config: Multiple values for model" \
        in r.stdout, r.stdout


def test_an_option_without_a_required_key_is_S004_naming_the_key(tmp_path):
    (tmp_path / "conf" / "lora").mkdir(parents=True)
    (tmp_path / "conf" / "lora" / "mine.yaml").write_text("lora_alpha: 32\nlora_dropout: 0.05\n")
    r = loracfg("lint", "-o", "json", "lora=mine", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    found = {(d["code"], d["file"], d["line"], d["fix"]) for d in json.loads(r.stdout)["diagnostics"]}
    assert ("S004", "conf/lora/mine.yaml", 1, "+lora.r=VALUE") in found, found
    assert {c for c, *_ in found} == {"S004"}


def test_wrong_command_line_exits_2():
    assert loracfg("lint", "--no-such-flag").returncode == 2
    assert loracfg("rule", "X999").returncode == 2
    assert loracfg().returncode == 2


def test_json_output_shape():
    r = loracfg("lint", "-o", "json", "lora=r64", "lora.r=8", "schedule.learning_rate=5e-3")
    data = json.loads(r.stdout)
    assert set(data) == {"diagnostics", "summary"}
    for d in data["diagnostics"]:
        assert {"code", "severity", "message", "file", "line", "col", "key", "fix"} <= set(d)
    by_code = {d["code"]: d for d in data["diagnostics"]}
    assert by_code["L003"]["file"] == "conf/lora/r64.yaml" and by_code["L003"]["key"] == "lora.lora_alpha"
    assert by_code["L003"]["fix"] == "lora.lora_alpha=16"
    assert by_code["L001"]["severity"] == "error" and data["summary"]["errors"] == 1


def test_github_output():
    r = loracfg("lint", "-o", "github", "quant=nf4", "schedule.learning_rate=5e-3")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("::warning file=conf/quant/nf4.yaml,line=4,col=15,title=L011 bitsandbytes-without-cuda::")
    assert lines[1].startswith("::error title=L001 learning-rate-out-of-range::")  # a command-line override: no file
    assert "%0Ahelp: schedule.learning_rate=2e-4" in lines[1]


def test_rule_docs():
    r = loracfg("rule", "L003")
    assert r.returncode == 0 and r.stdout.startswith("# lora-scaling-out-of-range (L003)")
    assert "## Why is this bad?" in r.stdout
    listing = json.loads(loracfg("rule", "--all", "-o", "json").stdout)
    assert {x["code"] for x in listing} == set(ALL_CODES)
    assert loracfg("rule", "target-module-not-in-model").stdout.startswith("# target-module-not-in-model (L012)")


def _user_repo(tmp_path: Path) -> Path:
    (tmp_path / "conf" / "lora").mkdir(parents=True)
    (tmp_path / "conf" / "schedule").mkdir()
    (tmp_path / "conf" / "lora" / "my-r32.yaml").write_text(
        "defaults:\n  - r16\n  - _self_\nr: 32\nlora_alpha: 8\n")
    (tmp_path / "conf" / "schedule" / "fast.yaml").write_text(
        "defaults:\n  - cosine\n  - _self_\nlearning_rate: 5.0e-3\n")
    return tmp_path


def test_user_repository_conf_is_linted_with_its_own_locations(tmp_path):
    repo = _user_repo(tmp_path)
    r = loracfg("lint", "-o", "json", cwd=repo)
    data = json.loads(r.stdout)
    got = {(d["code"], d["file"], d["line"]) for d in data["diagnostics"]}
    assert ("L003", "conf/lora/my-r32.yaml", 5) in got
    assert ("L001", "conf/schedule/fast.yaml", 4) in got
    assert data["summary"]["compositions"] == 3  # default + the user's two options
    assert r.returncode == 1


def test_file_arguments_lint_each_file_in_a_composition(tmp_path):
    repo = _user_repo(tmp_path)
    r = loracfg("lint", "conf/lora/my-r32.yaml", cwd=repo)
    assert r.returncode == 0 and "conf/lora/my-r32.yaml:5:13: L003" in r.stdout
    assert "1 composition(s)" in r.stdout
    r = loracfg("lint", "conf/schedule/fast.yaml", "conf/lora/my-r32.yaml", cwd=repo)
    assert r.returncode == 1 and "2 composition(s)" in r.stdout


def test_missing_file_argument_is_a_diagnostic(tmp_path):
    r = loracfg("lint", "conf/lora/nope.yaml", cwd=_user_repo(tmp_path))
    assert r.returncode == 1 and "C008" in r.stdout and "Traceback" not in r.stderr


def test_files_outside_the_run_groups_are_skipped(tmp_path):
    repo = _user_repo(tmp_path)
    (repo / "conf" / "hydra" / "launcher").mkdir(parents=True)
    (repo / "conf" / "hydra" / "launcher" / "slurm.yaml").write_text("timeout_min: 60\n")
    r = loracfg("lint", "conf/hydra/launcher/slurm.yaml", cwd=repo)
    assert r.returncode == 0 and "0 composition(s)" in r.stdout


def test_noqa_comment_silences_one_code_on_its_line(tmp_path):
    repo = _user_repo(tmp_path)
    f = repo / "conf" / "lora" / "my-r32.yaml"
    f.write_text(f.read_text().replace("lora_alpha: 8", "lora_alpha: 8  # noqa: L003"))
    r = loracfg("lint", "conf/lora/my-r32.yaml", cwd=repo)
    assert "L003" not in r.stdout.split("Found")[0] and "1 suppressed" in r.stdout
    f.write_text(f.read_text().replace("# noqa: L003", "# noqa: L016"))
    assert "L003" in loracfg("lint", "conf/lora/my-r32.yaml", cwd=repo).stdout


def test_pyproject_ignores(tmp_path):
    repo = _user_repo(tmp_path)
    (repo / "pyproject.toml").write_text('[tool.loracfg]\nignore = ["L001"]\n'
                                         'per-file-ignores = { "conf/lora/*.yaml" = ["L003"] }\n')
    r = loracfg("lint", cwd=repo)
    assert r.returncode == 0 and "L001" not in r.stdout and "L003" not in r.stdout
    assert "2 suppressed" in r.stdout


def test_pyproject_with_an_unknown_setting_is_reported(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.loracfg]\nignroe = ["L001"]\n')
    with pytest.raises(SettingsError, match="ignroe"):
        load(tmp_path)
    r = loracfg("lint", cwd=tmp_path)
    assert r.returncode == 1 and "ignroe" in r.stderr and "Traceback" not in r.stderr


def test_findings_are_deduplicated_across_compositions(tmp_path):
    (tmp_path / "conf" / "schedule").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text(
        "defaults:\n  - model: tiny-llama\n  - quant: none\n  - lora: r16\n  - schedule: wd\n  - hardware: cpu\n"
        "  - data: tiny-patterns\n  - _self_\nseed: 1\noutput_dir: out\n")
    (tmp_path / "conf" / "schedule" / "wd.yaml").write_text("defaults:\n  - cosine\n  - _self_\nweight_decay: 0.5\n")
    (tmp_path / "conf" / "lora").mkdir()
    (tmp_path / "conf" / "lora" / "r4.yaml").write_text("defaults:\n  - r8\n  - _self_\nr: 4\nlora_alpha: 8\n")
    result = lint((), tmp_path / "conf")
    assert result.compositions == 2
    assert [d.code for d in result.diagnostics] == ["L007"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs the train extra installed to mean anything")
def test_lint_never_imports_the_training_stack():
    code = ("import sys\nfrom loracfg.compiler.cli import main\nrc = main(['lint', '-o', 'json', 'quant=nf4'])\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout[-500:] + r.stderr[-2000:]


@pytest.mark.parametrize("name, content, where, what", [
    ("scalar", b"42\n", "conf/lora/scalar.yaml:1:1", "the file holds the scalar '42', not a mapping of config keys"),
    ("listed", b"- r: 16\n", "conf/lora/listed.yaml:1:1", "the file holds a list, not a mapping of config keys"),
    ("latin", b"r: 16\nlora_alpha: \xff32\n", "conf/lora/latin.yaml:2:13", "the file is not UTF-8 (byte 0xff)"),
    ("control", b"r: 16\nlora_alpha: 3\x002\n", "conf/lora/control.yaml:2:14",
     "the file has a control character (U+0000) YAML does not allow; remove it")])
def test_an_option_file_hydra_cannot_load_is_named_not_a_traceback(tmp_path, name, content, where, what):
    (tmp_path / "conf" / "lora").mkdir(parents=True)
    (tmp_path / "conf" / "lora" / f"{name}.yaml").write_bytes(content)
    r = loracfg("lint", f"conf/lora/{name}.yaml", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"{where}: C001 [error] not loaded: {what}" in r.stdout, r.stdout


@pytest.mark.parametrize("command", [["estimate"], ["compile"], ["diff", "a", "b"], ["data"]])
def test_a_config_dir_that_does_not_exist_is_one_message(tmp_path, command):
    r = loracfg(*command, "--config-dir", str(tmp_path / "nope"), cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"loracfg {command[0]}: --config-dir '{tmp_path / 'nope'}' is not a directory" in r.stderr


@pytest.mark.parametrize("content, shape", [("[1, 2]", "a JSON list"),
                                            ('{"a": 1}', "a JSON dict without plan_version and hash")])
def test_diff_refuses_json_that_is_not_a_plan(tmp_path, content, shape):
    (tmp_path / "x.json").write_text(content)
    r = loracfg("diff", "x.json", "x.json", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "no differences" not in r.stdout
    assert f"loracfg diff: x.json is not a plan ({shape})" in r.stderr


def test_a_broken_pyproject_with_our_table_is_an_error(tmp_path):
    repo = _user_repo(tmp_path)
    (repo / "pyproject.toml").write_text('[tool.loracfg\nignore = ["L006"]\n')
    r = loracfg("lint", cwd=repo)
    assert r.returncode == 1 and "pyproject.toml: not valid TOML (Expected ']'" in r.stderr
    (repo / "pyproject.toml").write_text("[tool.other\n")  # not ours: ignored as before
    assert "not valid TOML" not in loracfg("lint", cwd=repo).stderr


def test_a_file_that_is_no_option_is_said_to_be_skipped(tmp_path):
    repo = _user_repo(tmp_path)
    (repo / "conf" / "other").mkdir()
    (repo / "conf" / "other" / "x.yaml").write_text("a: 1\n")
    r = loracfg("lint", "conf/other/x.yaml", cwd=repo)
    assert r.returncode == 0 and "loracfg lint: skipped conf/other/x.yaml: not an option of a config group" in r.stderr


@pytest.mark.parametrize("target, why", [("outdir", "it is a directory"),
                                         ("afile/plan.json", "afile is a file, not a directory")])
def test_compile_checks_its_output_path_before_compiling(tmp_path, target, why):
    pytest.importorskip("transformers")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "afile").write_text("")
    r = loracfg("compile", "-o", target, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"loracfg compile: cannot write {target}: {why}; pass -o a file path" in r.stderr
    assert "method:" not in r.stdout  # refused before the compile


def test_many_files_are_composed_in_batches_with_the_same_findings(tmp_path):
    """pre-commit --all-files passes every option file: from four on they are composed in batches
    (compose_each_option); what is found and where is what linting each file alone finds."""
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    (conf / "lora" / "too-wide.yaml").write_text("defaults:\n  - r16\n  - _self_\n\nr: 512\nlora_alpha: 1024\n")
    (conf / "schedule" / "hot.yaml").write_text("defaults:\n  - cosine\n  - _self_\n\nlearning_rate: 0.5\n")
    (conf / "model" / "bad.yaml").write_text("defaults:\n  - minilm-l6\n  - _self_\n\nnum_labels: 0\n")
    (conf / "quant" / "eight.yaml").write_text("defaults:\n  - int8\n  - _self_\n")
    files = sorted(str(p) for p in conf.glob("*/*.yaml") if p.parent.name in GROUPS)
    together = lint(files)
    alone = [d for f in files for d in lint([f]).diagnostics]
    assert together.compositions == len(files) >= 4
    def key(d):
        return str(d.location), d.code, d.message

    assert sorted(map(key, together.diagnostics)) == sorted(set(map(key, alone)))
    assert {"L001", "S003"} <= {d.code for d in together.diagnostics}


def test_a_minimal_option_file_takes_library_defaults_and_all_problems_show_at_once(tmp_path):
    """A user's option lists what it changes: bias, use_rslora, use_dora... take peft's defaults (named in the
    plan's decisions), and a schema error does not hide what the rules find in the same run."""
    conf = tmp_path / "conf"
    (conf / "lora").mkdir(parents=True)
    (conf / "lora" / "mine.yaml").write_text("r: 16\nlora_alpha: 256\ntarget_modules: [q_proj, nope_proj]\n")
    (conf / "lora" / "broken.yaml").write_text("r: 16\nlora_alpha: 256\ntarget_modules: [q_proj, nope_proj]\n"
                                               "lora_dropout: high\n")
    r = loracfg("lint", "conf/lora/mine.yaml", cwd=tmp_path)
    assert r.returncode == 1 and "S004" not in r.stdout
    assert "conf/lora/mine.yaml:2:13: L003" in r.stdout and "conf/lora/mine.yaml:3:26: L012" in r.stdout
    r = loracfg("lint", "conf/lora/broken.yaml", cwd=tmp_path)
    codes = sorted(line.split()[1] for line in r.stdout.splitlines() if line.startswith("conf/lora/broken.yaml"))
    assert codes == ["L003", "L012", "S002"], r.stdout
    from loracfg.compiler.pipeline import compile_run

    compiled = compile_run(["lora=mine", "lora.target_modules=[q_proj]"], conf, build_objects=False)
    assert compiled.ok
    why = {d["argument"]: d["why"] for d in compiled.plan["decisions"]}
    assert compiled.plan["lora"]["LoraConfig"]["bias"] == "none" and "peft LoraConfig" in why["lora.bias"]
    assert compiled.plan["config"]["lora"]["use_dora"] is False and "lora.use_dora" in why
