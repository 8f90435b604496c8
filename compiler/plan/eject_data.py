"""The ejected script's data preparation (``loracfg compile --emit python``): the runner's steps for the plan's
data format written out with plain ``datasets`` / ``transformers`` calls, so the script trains end to end
without loracfg. Only the code the plan's format and batching mode use is emitted.

The steps are the runner's (runner/data): read (the file type from the extension), split with the seed,
render with the chat template, learn only the completion / assistant spans (found by prefix rendering), end
each completion with the EOS and learn it, truncate, drop rows left with nothing to learn, pack. A test
trains the emitted script and ``train.py`` on the same plan and compares their eval losses.
"""

from __future__ import annotations

import inspect
import pprint
import re
from dataclasses import dataclass
from typing import Any

_READ = '''
EXTENSIONS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def read_rows():
    """The rows as a datasets.Dataset: a local file by its extension, or a hub data set id."""
    path = DATA["path"]
    if path.startswith("builtin:"):
        return Dataset.from_list(BUILTIN[path[len("builtin:"):]](DATA["num_samples"], SEED))
    kind = EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        return load_dataset(path, split="train")
    rows = load_dataset(kind, data_files=os.path.expanduser(path), split="train")
    if kind == "text" and DATA["dataset_text_field"] != "text":
        rows = rows.rename_column("text", DATA["dataset_text_field"])
    return rows


def split(rows):
    """Train and eval rows, split with the run's seed as loracfg's runner does."""
    if not DATA["test_size"]:
        return rows, None
    parts = rows.train_test_split(test_size=DATA["test_size"], seed=SEED)
    return parts["train"], parts["test"]
'''

_TURNS = {
    "completion": '''
def turns_of(row):
    """A prompt-completion row as a conversation: the completion is the assistant turn."""
    return [("user", row[DATA["prompt_field"]]), ("assistant", row[DATA["completion_field"]])]
''',
    "alpaca": '''
def turns_of(row):
    """An alpaca row as a conversation: instruction (and input, when there is one), then the output."""
    extra = row.get(DATA["input_field"])
    prompt = row[DATA["instruction_field"]]
    if extra and extra.strip():
        prompt = prompt + "\\n\\n" + extra
    return [("user", prompt), ("assistant", row[DATA["output_field"]])]
''',
    "messages": '''
ROLE_MAP = {"system": "system", "user": "user", "assistant": "assistant", "human": "user", "gpt": "assistant",
            "bot": "assistant", "model": "assistant"}


def turns_of(row):
    """A conversation's turns as (role, content), roles mapped to system/user/assistant."""
    roles = {**ROLE_MAP, **(DATA["role_map"] or {})}
    return [(roles[t[DATA["role_field"]]], t[DATA["content_field"]]) for t in row[DATA["messages_field"]]]
''',
}

_CHAT = '''
def chat_template(tokenizer):
    """data.chat_template: 'auto' is the tokenizer's own template when it has one, else chatml."""
    own = getattr(tokenizer, "chat_template", None)
    if DATA["chat_template"] == "auto" and isinstance(own, str) and own:
        return own
    return SHIPPED_TEMPLATE


def render(tokenizer, template, turns, generation_prompt):
    return tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in turns], chat_template=template,
                                         tokenize=False, add_generation_prompt=generation_prompt)


def segments(tokenizer, template, turns):
    """(text, learned) pieces: each assistant turn is what its rendering adds to the conversation before it
    rendered with the generation prompt."""
    learn_inputs = DATA["train_on_inputs"]
    out, done = [], ""
    for i, (role, _) in enumerate(turns):
        if role != "assistant":
            continue
        prefix = render(tokenizer, template, turns[:i], True)
        upto = render(tokenizer, template, turns[: i + 1], False)
        if not (prefix.startswith(done) and upto.startswith(prefix)) or upto == prefix:
            raise ValueError("the chat template does not render a prefix of the conversation before turn %d" % i)
        out += [(prefix[len(done):], learn_inputs), (upto[len(prefix):], True)]
        done = upto
    rest = render(tokenizer, template, turns, False)[len(done):]
    return [(text, learned) for text, learned in out + [(rest, learn_inputs)] if text]


def encoder(tokenizer):
    """row -> input_ids and labels (-100 where nothing is learned), the EOS learned at the end."""
    template = chat_template(tokenizer)
    tokenizer.chat_template = template  # saved with the adapter: inference renders prompts the same way
    eos = eos_id(tokenizer)
    probe = tokenizer("a")["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and probe[:1] == [
        tokenizer.bos_token_id] else []

    generation = bool(re.search(r"{%-?\\s*generation\\s*-?%}", template)) and tokenizer.is_fast

    def encode(row):
        turns = turns_of(row)
        if generation:  # the template marks the assistant tokens itself: the tokenizer's assistant mask
            enc = tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in turns], chat_template=template,
                                                tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
            ids = list(enc["input_ids"])
            labels = [i if m or DATA["train_on_inputs"] else IGNORE for i, m in zip(ids, enc["assistant_masks"])]
        else:
            ids, labels = [], []
            for text, learned in segments(tokenizer, template, turns):
                piece = tokenizer(text, add_special_tokens=False)["input_ids"]
                ids += piece
                labels += piece if learned else [IGNORE] * len(piece)
        if bos and ids[:1] != bos:  # the tokenizer starts sequences with BOS; the template did not
            ids, labels = bos + ids, [IGNORE] + labels
        if eos is not None and eos not in ids[-2:]:
            ids.append(eos)
            labels.append(eos)
        return truncated(ids, labels)
    return encode
'''

_TEXT = '''
def encoder(tokenizer):
    """row -> input_ids and labels: the text learned whole, ended by the EOS."""
    eos = eos_id(tokenizer)

    def encode(row):
        ids = tokenizer(row[DATA["dataset_text_field"]])["input_ids"]
        if eos is not None and ids[-1:] != [eos]:
            ids = ids + [eos]
        return truncated(ids, list(ids))
    return encode
'''

_CLASSIFICATION = '''
def encoder(tokenizer):
    """row -> input_ids and its class label."""
    def encode(row):
        enc = tokenizer(row[DATA["dataset_text_field"]], truncation=True, max_length=DATA["max_length"])
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "labels": int(row[DATA["label_field"]]), "keep": True}
    return encode
'''

_TOKEN_CLS = '''
def encoder(tokenizer):
    """words -> sub-tokens: the first sub-token of each word learns its tag, the others -100."""
    def encode(row):
        enc = tokenizer(row[DATA["tokens_field"]], is_split_into_words=True, truncation=True,
                        max_length=DATA["max_length"])
        labels, previous = [], None
        for word in enc.word_ids():
            labels.append(IGNORE if word is None or word == previous else row[DATA["tags_field"]][word])
            previous = word
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels,
                "keep": any(x != IGNORE for x in labels)}
    return encode
'''

_COMMON = '''
def eos_id(tokenizer):
    """data.eos_token's id (TRL's eos_token), or the tokenizer's EOS."""
    if DATA["eos_token"] is None:
        return tokenizer.eos_token_id
    return tokenizer(DATA["eos_token"], add_special_tokens=False)["input_ids"][0]


def truncated(ids, labels):
    """Cut to max_length from the end data.truncation_mode keeps; a row left with nothing learned is dropped."""
    n = DATA["max_length"]
    if len(ids) > n:
        ids, labels = (ids[-n:], labels[-n:]) if DATA["truncation_mode"] == "keep_end" else (ids[:n], labels[:n])
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels,
            "keep": any(x != IGNORE for x in labels)}
'''

_NO_PACK = """
def pack(ds):
    return ds

"""

_PACK = {
    "packed-bfd": '''
def pack(ds):
    """Best-fit decreasing: whole examples in sequences of at most max_length tokens, position ids restarting
    per example, the first label of each example not learned (it would be predicted from the previous one)."""
    ids_all, labels_all = ds["input_ids"], ds["labels"]
    order = sorted(range(len(ids_all)), key=lambda i: -len(ids_all[i]))
    free, bins = [], []  # (space left, bin number) ascending; the examples in each bin
    for i in order:
        at = bisect.bisect_left(free, (len(ids_all[i]), -1))
        space, b = free.pop(at) if at < len(free) else (DATA["max_length"], len(bins))
        if b == len(bins):
            bins.append([])
        bins[b].append(i)
        if space - len(ids_all[i]) > 0:
            bisect.insort(free, (space - len(ids_all[i]), b))
    rows = {"input_ids": [], "labels": [], "position_ids": []}
    for members in bins:
        row = {k: [] for k in rows}
        for i in sorted(members):
            row["input_ids"] += ids_all[i]
            row["labels"] += [IGNORE] + labels_all[i][1:]
            row["position_ids"] += range(len(ids_all[i]))
        for k in rows:
            rows[k].append(row[k])
    return Dataset.from_dict(rows)


def collate(features):
    """A batch's packed sequences side by side in one row with their position ids and no attention mask:
    transformers derives the per-example causal mask from the position ids (the KV cache is off)."""
    batch = {"input_ids": [], "labels": [], "position_ids": []}
    for f in features:
        for k in batch:
            batch[k] += list(f[k])
    return {k: torch.tensor([v], dtype=torch.long) for k, v in batch.items()}


def data_collator(tokenizer):
    return collate
''',
    "packed-wrapped": '''
def pack(ds):
    """The token stream cut into blocks of exactly max_length tokens (examples split across blocks)."""
    stream, labels = [], []
    for ids, lab in zip(ds["input_ids"], ds["labels"]):
        stream += ids
        labels += lab
    n = DATA["max_length"]
    blocks = range(0, len(stream) - n + 1, n)
    return Dataset.from_dict({"input_ids": [stream[i:i + n] for i in blocks],
                              "attention_mask": [[1] * n for _ in blocks],
                              "labels": [labels[i:i + n] for i in blocks]})


def data_collator(tokenizer):
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
''',
    "padding-free": _NO_PACK + '''
def data_collator(tokenizer):
    """Each batch flattened into one row, position ids restarting per example (the KV cache is off)."""
    return DataCollatorWithFlattening(separator_id=IGNORE)
''',
    "padded": _NO_PACK + '''
def data_collator(tokenizer):
    """Each batch padded to its longest example; padding gets label -100, the EOS stays learned."""
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
''',
    "classification": _NO_PACK + '''
def data_collator(tokenizer):
    return DataCollatorWithPadding(tokenizer)
''',
    "token-cls": _NO_PACK + '''
def data_collator(tokenizer):
    """Pads input_ids and labels (with -100) to the batch's longest row."""
    return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)
''',
}

_BUILD = '''
def build_datasets(tokenizer):
    """Train and eval datasets of input_ids / labels, as loracfg's runner prepares them."""
    train_rows, eval_rows = split(read_rows())
    encode = encoder(tokenizer)

    def prepare(rows):
        encoded = rows.map(encode, remove_columns=rows.column_names, num_proc=DATA["dataset_num_proc"])
        return pack(encoded.filter(lambda r: r["keep"]).remove_columns(["keep"]))
    return prepare(train_rows), prepare(eval_rows) if eval_rows is not None else None


def train():
    """Prepare the data, build the model and Trainer, train, save the adapter; returns the final eval loss."""
    args, lora, bnb = build_objects()
    tokenizer = build_tokenizer()
    train_dataset, eval_dataset = build_datasets(tokenizer)
    set_seed(SEED)  # a new head (num_labels) is initialised at random: seeded, as loracfg's runner does
    model = build_model(bnb, tokenizer)
    if SEQUENCES in ("packed-bfd", "padding-free"):
        model.config.use_cache = False  # else transformers ignores the position ids and examples attend across
    if bnb is not None:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(
            TRAINING_ARGUMENTS.get("gradient_checkpointing") or TRAINING_ARGUMENTS.get("activation_checkpointing")))
    model = get_peft_model(model, lora)
    model.print_trainable_parameters()
    trainer = Trainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                      data_collator=data_collator(tokenizer), {tokenizer_argument}=tokenizer)
    if eval_dataset is not None:
        print(json.dumps({"initial_eval_loss": trainer.evaluate()["eval_loss"]}))
    trainer.train()
    trainer.save_model(os.path.join(args.output_dir, "adapter"))
    tokenizer.save_pretrained(os.path.join(args.output_dir, "adapter"))
    return trainer.evaluate()["eval_loss"] if eval_dataset is not None else None
'''


def _literal(value: Any) -> str:
    return pprint.pformat(value, indent=4, sort_dicts=False, width=100)


@dataclass
class DataSection:
    code: str
    stdlib: list[str]  # import lines the code needs beyond json, os, sys
    transformers: list[str]  # names it imports from transformers


def data_section(plan: dict[str, Any]) -> DataSection:
    """The data preparation and the end-to-end ``train()`` of the ejected script for this plan."""
    data, task = plan["data"], plan["model"]["task"]
    mode = plan["resolved"]["sequences"]
    fmt = data["format"]
    head = [f"DATA = {_literal(data)}", f"SEQUENCES = {mode!r}", "IGNORE = -100"]
    parts = [_READ, _COMMON]
    if fmt in _TURNS:
        from loracfg.runner.data.templates import (
            SHIPPED,  # pure Python, like loracfg.runner.data.builtin below
        )

        name = "chatml" if data["chat_template"] == "auto" else data["chat_template"]
        head.append(f"SHIPPED_TEMPLATE = {SHIPPED[name]!r}  # data.chat_template {data['chat_template']!r}")
        parts += [_TURNS[fmt], _CHAT]
    elif fmt == "classification":
        parts.append(_CLASSIFICATION)
    elif fmt == "token-cls":
        parts.append(_TOKEN_CLS)
    else:
        parts.append(_TEXT)
    collate = {"seq-cls": "classification", "token-cls": "token-cls"}.get(task, mode)
    parts.append(_PACK[collate])
    if data["path"].startswith("builtin:"):
        from loracfg.runner.data import builtin

        source = "\n".join(line for line in inspect.getsource(builtin).split('"""', 2)[2].splitlines()
                            if not line.startswith(("from ", "import "))).strip()  # the script imports them
        parts.insert(0, "\n# builtin:* rows, generated as loracfg generates them (seeded, no download)\n" + source)
    parts.append(_BUILD.replace("{tokenizer_argument}", plan["trainer"]["tokenizer_argument"]))
    code = "\n".join(head) + "\n\n\n" + "\n\n\n".join(p.strip("\n") for p in parts) + "\n\n"
    # the imports the emitted code uses, read off it (so they cannot disagree with it)
    stdlib = [line for module, line in (("bisect.", "import bisect\n"), ("re.", "import re\n"),
                                        ("random.", "import random\n"),
                                        ("Callable[", "from typing import Any, Callable\n"))
              if re.search(rf"(?<![\w.]){re.escape(module)}", code)]
    names = sorted(set(re.findall(r"\b(DataCollator\w+)\(", code)))
    return DataSection(code, stdlib, names)
