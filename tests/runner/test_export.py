"""Using a trained run: loracfg export (adapter, or merged with a model card), generate, and runs.

Real tiny runs of the embedded default (tiny-llama built from its config, byte-level tokenizer) are trained once
per module with LoRA, DoRA and QLoRA; the merged models are compared with base + adapter on a fixed batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

import yaml  # noqa: E402
from loracfg.compiler.pipeline import compile_run  # noqa: E402
from loracfg.runner import export  # noqa: E402
from loracfg.runner.errors import RunError  # noqa: E402
from loracfg.runner.run import run, run_dir_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
# 30 steps at the default rate: the adapter moves the logits well past the merge tolerance
SHORT = ["schedule.max_steps=30", "schedule.num_train_epochs=null", "schedule.eval_strategy=no",
         "schedule.save_steps=10", "data.num_samples=200", "data.max_length=64", "lora.lora_dropout=0.0"]
METHODS = {"lora": [], "dora": ["lora.use_dora=true"],
           # fp32 compute so that the merge itself is exact: a bf16 merge rounds W + BA to bf16 (8 mantissa bits)
           "qlora": ["quant=nf4", "quant.bnb_4bit_compute_dtype=float32"]}
MERGE_ATOL = 1e-4  # measured: see the test's print (about 1e-6 for all three)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    done = {}
    for name, extra in METHODS.items():
        compiled = compile_run([f"output_dir={out}", *SHORT, *extra], CONF)
        assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
        with open(os.devnull, "w") as quiet:
            metrics = run(compiled.plan, out=quiet, objects=compiled.objects)
        assert metrics["finished"]
        done[name] = run_dir_of(compiled.plan)
    return done


def _batch(tokenizer) -> dict:
    enc = tokenizer(["the quick brown fox", "1 2 3 4 5 6"], return_tensors="pt", padding=True)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_the_merged_model_gives_the_logits_of_base_plus_adapter(runs, tmp_path, method):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    done = export.export(runs[method], out, merge=True)
    assert (out / "model.safetensors").is_file() and (out / "generation_config.json").is_file()
    assert not list(out.glob("adapter_*")) and (out / "tokenizer_config.json").is_file()
    if method == "qlora":
        assert "de-quantized" in done["how"] and "never merged into the quantized weights" in done["how"]
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert not any("4bit" in type(m).__name__ for m in merged.modules())

    r = export.open_run(runs[method])
    tokenizer = export._tokenizer(r)
    base = export.load_base(r, tokenizer)
    if method == "qlora":
        base = base.dequantize()  # the weights the adapter trained against, in the compute dtype
    batch = _batch(tokenizer)
    with torch.no_grad():
        plain = base(**batch).logits.clone()
        reference = export.with_adapter(r, base).eval()(**batch).logits
        got = merged(**batch).logits
    diff = (got - reference).abs().max().item()
    effect = (reference - plain).abs().max().item()
    print(f"{method}: merged vs base+adapter max |diff| {diff:.2e}; the adapter's own effect {effect:.2e}")
    assert diff < MERGE_ATOL
    assert effect > 100 * MERGE_ATOL  # the adapter matters: a merge that dropped it would fail


@pytest.mark.slow
def test_the_adapter_export_is_a_peft_folder_with_a_model_card_of_its_provenance(runs, tmp_path):
    from peft import PeftConfig

    out = tmp_path / "adapter"
    export.export(runs["qlora"], out)
    assert PeftConfig.from_pretrained(out).r == 16
    assert (out / "adapter_model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    plan = json.loads((runs["qlora"] / "plan.json").read_text())
    assert meta["library_name"] == "peft" and "qlora" in meta["tags"] and meta["pipeline_tag"] == "text-generation"
    assert meta["loracfg"]["plan_hash"] == plan["hash"]
    for needle in (plan["hash"], "## Lint of the run's config", "## Composed config", "| transformers |",
                   "final_eval_loss" if "final_eval_loss" in json.loads((runs["qlora"] / "metrics.json").read_text())
                   else "global_step", "bnb_4bit_compute_dtype: float32"):
        assert needle in text, needle


@pytest.mark.slow
def test_generate_prints_the_answer_of_the_default_run(runs):
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "generate", str(runs["lora"]), "hello",
                        "--max-new-tokens", "12"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip(), "an answer was printed"
    direct = export.generate(runs["lora"], "hello", max_new_tokens=12)
    assert r.stdout.rstrip("\n") == direct  # greedy: the same answer every time


@pytest.mark.slow
def test_runs_lists_finished_stopped_and_failed_runs(runs, tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    finished = shutil.copytree(runs["lora"], root / "aaaaaaaaaaaa")
    stopped = shutil.copytree(runs["dora"], root / "bbbbbbbbbbbb")
    failed = shutil.copytree(runs["qlora"], root / "cccccccccccc")
    gone = shutil.copytree(runs["lora"], root / "dddddddddddd")

    def edit(run_dir: Path, **changes) -> None:
        m = json.loads((run_dir / "metrics.json").read_text())
        m.update(changes)
        (run_dir / "metrics.json").write_text(json.dumps(m))

    edit(stopped, finished=False, stopped_by="SIGTERM", global_step=20)
    edit(failed, finished=False, error="RuntimeError: CUDA out of memory", global_step=7)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    edit(gone, finished=False, global_step=10, pid=dead.pid)
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "runs", str(root), "-o", "json"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    by_dir = {Path(x["run_dir"]).name: x for x in json.loads(r.stdout)}
    assert by_dir[finished.name]["status"] == "finished"
    assert by_dir[stopped.name]["status"] == "stopped at step 20 (SIGTERM)"
    assert by_dir[failed.name]["status"] == "failed at step 7: RuntimeError: CUDA out of memory"
    assert by_dir[gone.name]["status"] == "stopped at step 10 (process gone)"
    assert by_dir[failed.name]["method"] == "QLoRA r=16" and by_dir[stopped.name]["method"] == "DoRA r=16"
    text = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "runs", str(root)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT).stdout
    header = text.splitlines()[0].split()
    assert header[:3] == ["run", "model", "method"] and "use_dora" in header and "load_in_4bit" in header
    assert "learning_rate" not in header  # the same in every run: no column
    assert len(text.splitlines()) == 5


@pytest.mark.slow
def test_bad_input_is_refused_with_a_message_and_nothing_half_written(runs, tmp_path):
    with pytest.raises(RunError, match="is not a run directory"):
        export.export(tmp_path, tmp_path / "x")
    unfinished = shutil.copytree(runs["lora"], tmp_path / "unfinished")
    m = json.loads((unfinished / "metrics.json").read_text())
    (unfinished / "metrics.json").write_text(json.dumps({**m, "finished": False, "stopped_by": "SIGTERM"}))
    with pytest.raises(RunError, match="did not finish .*--allow-unfinished"):
        export.export(unfinished, tmp_path / "y")
    done = export.export(unfinished, tmp_path / "y", allow_unfinished=True)
    assert Path(done["adapter"]).name.startswith("checkpoint-")
    assert "(the run did not finish)" in (tmp_path / "y" / "README.md").read_text()

    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "export", str(runs["lora"]), "-o", str(target),
                        "--merge"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 1 and "exists; pass --force" in r.stderr and "Traceback" not in r.stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    export.export(runs["lora"], target, force=True)
    assert (target / "adapter_config.json").is_file() and not (target / "keep.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind

    with pytest.raises(RunError, match="base model '.*nowhere' is missing"):
        export.export(runs["lora"], tmp_path / "z", merge=True, base=str(tmp_path / "nowhere"))
    # a base of another size: a tiny llama twice as wide, saved where --base points
    from transformers import AutoConfig, AutoModelForCausalLM

    plan = json.loads((runs["lora"] / "plan.json").read_text())
    arch = {**plan["model"]["architecture"]}
    arch["hidden_size"] *= 2
    other = tmp_path / "wider"
    AutoModelForCausalLM.from_config(AutoConfig.for_model(**arch)).save_pretrained(other)
    with pytest.raises(RunError, match=f"hidden_size {arch['hidden_size'] // 2} in the run, {arch['hidden_size']} "
                                       f"in the base"):
        export.export(runs["lora"], tmp_path / "z", merge=True, base=str(other))
    assert not (tmp_path / "z").exists()
