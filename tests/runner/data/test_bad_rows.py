"""Bad data is one message with the row's file:line, exit 1, nothing written: through the real runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("datasets")
pytest.importorskip("peft")

from loracfg.compiler.pipeline import compile_run  # noqa: E402
from loracfg.compiler.plan import build as plan_module  # noqa: E402
from loracfg.runner.__main__ import main as runner_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}


def run_with(tmp_path: Path, lines: list[str], capsys, *overrides: str) -> str:
    f = tmp_path / "chat.jsonl"
    f.write_text("\n".join(lines) + "\n")
    compiled = compile_run([f"output_dir={tmp_path / 'out'}", "data=tiny-chat", f"data.path={f}",
                            "data.num_samples=4", "data.test_size=0.25", *overrides], ROOT / "conf")
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan_module.dumps(compiled.plan))
    assert runner_main([str(plan_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("runner: error: ") and "Traceback" not in err
    assert not (tmp_path / "out").exists(), "nothing may be written for a run that cannot start"
    return err.replace(str(f), "chat.jsonl")


def turns(*pairs) -> str:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in pairs]})


@pytest.mark.parametrize(("bad", "message"), [
    ('{"messages": [', "chat.jsonl:3: not valid JSON"),
    (turns(("user", "Hi"), ("robot", "beep")), "chat.jsonl:3: turn 1 has role 'robot' (key 'role'); known roles:"),
    (turns(("user", "Hi"), ("assistant", " ")), "chat.jsonl:3: turn 1 is an empty assistant turn"),
    (turns(("system", "Be brief."), ("user", "Hi")), "chat.jsonl:3: the conversation has no assistant turn"),
    (json.dumps({"messages": [{"role": "user", "content": ["Hi"]}, {"role": "assistant", "content": "x"}]}),
     "chat.jsonl:3: turn 0 (user) has list content (key 'content'), not a string"),
    (json.dumps({"text": "no conversation"}), "chat.jsonl:3: no 'messages' column (data.messages_field); the row has"),
], ids=["malformed-json", "unknown-role", "empty-assistant", "no-assistant", "non-string-content", "no-column"])
def test_a_bad_row_names_its_file_line(tmp_path, capsys, bad, message):
    lines = [json.dumps(GOOD), "", bad, json.dumps(GOOD), json.dumps(GOOD)]  # line 2 is blank: lines still count
    err = run_with(tmp_path, lines, capsys)
    assert message in err, err
    assert "(key: data.path)" in err


def test_the_first_bad_row_in_file_order_is_named_and_the_others_counted(tmp_path, capsys):
    bad = turns(("user", "Hi"))
    err = run_with(tmp_path, [json.dumps(GOOD), bad, json.dumps(GOOD), bad, bad, json.dumps(GOOD)], capsys)
    assert "chat.jsonl:2: the conversation has no assistant turn: there is nothing to learn (2 more bad rows; " \
           "data.on_bad_row=skip drops and counts them)" in err


def test_old_data_keys_and_file_type_formats_name_what_replaced_them(tmp_path):
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "old.yaml").write_text(
        "path: train.jsonl\nformat: jsonl\ntext_field: text\nmax_seq_length: 128\nnum_samples: 10\ntest_size: 0.1\n")
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "lint", "-o", "json", "data=old"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    found = {(d["code"], d["key"], d["line"]): (d["message"], d["fix"]) for d in json.loads(r.stdout)["diagnostics"]}
    assert found[("S001", "data.text_field", 3)] == (
        "'data.text_field' was renamed to 'data.dataset_text_field' (the name TRL's SFTConfig uses); rename the key",
        "rename 'text_field' to 'dataset_text_field'")
    assert found[("S001", "data.max_seq_length", 4)][1] == "rename 'max_seq_length' to 'max_length'"
    message, fix = found[("S003", "data.format", 2)]
    assert "no longer takes 'jsonl': it names the shape of the rows now" in message and fix == "data.format=text"


def test_rows_all_cut_off_by_max_length_stop_the_run_before_anything_is_written(tmp_path, capsys):
    long = turns(("user", "x" * 300), ("assistant", "y"))
    err = run_with(tmp_path, [long] * 4, capsys, "data.max_length=100")
    assert "no training example is left from data.path 'chat.jsonl'" in err and "dropped_no_learned_tokens" in err
    assert "raise data.max_length" in err and "(key: data.max_length)" in err


def test_too_few_rows_for_the_eval_split_is_a_message(tmp_path, capsys):
    err = run_with(tmp_path, [json.dumps(GOOD)], capsys)
    assert "data.test_size=0.25 cannot split 1 row(s) into a train and an eval set" in err
    assert "(key: data.test_size)" in err
