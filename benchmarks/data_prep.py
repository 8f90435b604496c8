"""Data preparation, loracfg's runner against TRL's SFTTrainer, side by side in one run.

100,000 generated alpaca rows and 20,000 conversations (written once to jsonl), tokenized with the same
fast tokenizer (a byte-level BPE trained here on the generated text, chatml template with `{% generation %}`
blocks so TRL can mask assistant turns), loss on the completions / assistant turns only, packed (bfd) to
1,024 tokens. Each side runs in its own process from a fresh `datasets` cache (uncached), then again from
that cache (cached); timed from reading the jsonl to the packed dataset, with the process's peak RSS.

loracfg: `prepare_run` on the compiled plan, read from plan.json as the runner reads it (what `train.py`
does before training). TRL: the user's map
from alpaca rows to prompt/completion messages, then `SFTTrainer._prepare_dataset` (what `SFTTrainer`
does in `__init__`), with SFTConfig(packing=True, packing_strategy="bfd", max_length=1024,
assistant_only_loss=True for conversations, completion_only_loss for prompt-completion rows).

    python benchmarks/data_prep.py [--alpaca 100000] [--chats 20000] [--workdir /tmp/loracfg-data-prep]

Targets (issue 12): loracfg / TRL wall <= 1.0 uncached, cached run <= 0.1 of loracfg's uncached, peak RSS
ratio <= 1.0. Needs the train extra and trl (`pip install trl`).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHATML = ("{% for message in messages %}{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
          "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}{% else %}"
          "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endif %}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
WORDS = ("time person year way day thing man world life hand part child eye woman place work week case point "
         "number group problem fact river market garden teacher robot apple kite stone bridge question answer "
         "light water table window story letter music colour summer winter morning evening city road").split()


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "."


def write_data(work: Path, n_alpaca: int, n_chats: int) -> tuple[Path, Path]:
    alpaca, chats = work / f"alpaca-{n_alpaca}.jsonl", work / f"chats-{n_chats}.jsonl"
    rng = random.Random(0)
    if not alpaca.exists():
        with open(alpaca, "w") as f:
            for _ in range(n_alpaca):
                row = {"instruction": _sentence(rng, 5, 20), "input": _sentence(rng, 0, 40) if rng.random() < 0.4
                       else "", "output": " ".join(_sentence(rng, 5, 20) for _ in range(rng.randint(1, 8)))}
                f.write(json.dumps(row) + "\n")
    if not chats.exists():
        with open(chats, "w") as f:
            for _ in range(n_chats):
                messages = [{"role": "system", "content": _sentence(rng, 4, 12)}] if rng.random() < 0.3 else []
                for _ in range(rng.randint(1, 4)):
                    messages += [{"role": "user", "content": _sentence(rng, 4, 30)},
                                 {"role": "assistant", "content": " ".join(_sentence(rng, 5, 20)
                                                                           for _ in range(rng.randint(1, 5)))}]
                f.write(json.dumps({"messages": messages}) + "\n")
    return alpaca, chats


def build_tokenizer(work: Path, sample: Path) -> Path:
    out = work / "tokenizer"
    if (out / "tokenizer.json").exists():
        return out
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    lines = sample.read_text().splitlines()[:20000]
    bpe.train_from_iterator(lines, vocab_size=4096, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  bos_token=None, unk_token=None)
    tok.chat_template = CHATML
    tok.save_pretrained(out)
    return out


LORACFG = r"""
import json, resource, sys, time
from loracfg.runner.data.prepare import prepare_run
from loracfg.runner.run import _tokenizer
plan = json.load(open(sys.argv[6]))  # compiled once by the parent, as the runner reads plan.json
tokenizer = _tokenizer(plan)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
run = prepare_run(plan["data"], tokenizer, plan["config"]["seed"], plan["model"]["task"], plan["resolved"]["sequences"])
wall = time.perf_counter() - t
ds = run.train.dataset
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mb": before, "sequences": len(ds), "tokens": sum(len(x) for x in ds["input_ids"]),
                  "learned": sum(sum(1 for v in x if v != -100) for x in ds["labels"])}))
"""


def compile_plan(work: Path, path: Path, fmt: str, n: int, tok: Path, max_length: int) -> Path:
    from loracfg.compiler.pipeline import compile_run
    from loracfg.compiler.plan import build as plan_module

    compiled = compile_run([f"data.path={path}", f"data.format={fmt}", f"data.num_samples={n}", "data.test_size=0.0",
                            "schedule.eval_strategy=no", f"data.max_length={max_length}", "data.packing=true",
                            f"model.tokenizer_name_or_path={tok}",
                            f"model.config.max_position_embeddings={max_length}",
                            f"output_dir={work / 'out'}"], ROOT / "conf")
    if not compiled.ok:
        sys.exit("; ".join(d.message for d in compiled.lint.diagnostics))
    out = work / f"plan-{fmt}.json"
    out.write_text(plan_module.dumps(compiled.plan))
    return out


TRL = r"""
import json, resource, sys, time, types
from datasets import load_dataset
from transformers import AutoTokenizer
from trl import SFTConfig, SFTTrainer
path, fmt, n, tok, max_length = sys.argv[1:6]
tokenizer = AutoTokenizer.from_pretrained(tok)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
args = SFTConfig(output_dir="/tmp/loracfg-data-prep-trl", max_length=int(max_length), packing=True,
                 packing_strategy="bfd", assistant_only_loss=fmt == "messages", report_to="none", use_cpu=True)
stub = types.SimpleNamespace(_tokenizer=tokenizer, chat_template=None, completion_only_loss=True)
t = time.perf_counter()
ds = load_dataset("json", data_files=path, split="train")
if fmt == "alpaca":  # TRL reads no alpaca rows: the user's map to prompt-completion messages
    def to_pc(row):
        prompt = row["instruction"] + ("\n\n" + row["input"] if row["input"] else "")
        return {"prompt": [{"role": "user", "content": prompt}],
                "completion": [{"role": "assistant", "content": row["output"]}]}
    ds = ds.map(to_pc, remove_columns=ds.column_names)
ds = SFTTrainer._prepare_dataset(stub, ds, tokenizer, args, True, None, "train")
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mb": before, "sequences": len(ds), "tokens": sum(len(x) for x in ds["input_ids"]),
                  "learned": sum(sum(1 for v in x if v != -100) for x in ds["labels"])}))
"""


def run(code: str, args: list[str], cache: Path) -> dict:
    env = {**__import__("os").environ, "HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed:\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpaca", type=int, default=100_000)
    parser.add_argument("--chats", type=int, default=20_000)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/loracfg-data-prep"))
    a = parser.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    alpaca, chats = write_data(a.workdir, a.alpaca, a.chats)
    tok = build_tokenizer(a.workdir, alpaca)
    print(f"{'set':<8} {'tool':<8} {'uncached s':>10} {'cached s':>9} {'peak RSS MB':>11} {'(at start)':>10} "
          f"{'sequences':>9} {'tokens':>10} {'learned':>10}")
    for name, path, fmt, n in (("alpaca", alpaca, "alpaca", a.alpaca), ("chats", chats, "messages", a.chats)):
        got = {}
        plan = compile_plan(a.workdir, path, fmt, n, tok, a.max_length)
        for tool, code in (("loracfg", LORACFG), ("trl", TRL)):
            cache = a.workdir / f"cache-{tool}-{name}"
            shutil.rmtree(cache, ignore_errors=True)
            argv = [str(path), fmt, str(n), str(tok), str(a.max_length), str(plan)]
            first, second = run(code, argv, cache), run(code, argv, cache)
            got[tool] = (first, second)
            print(f"{name:<8} {tool:<8} {first['wall']:>10.1f} {second['wall']:>9.1f} {first['rss_mb']:>11.0f} "
                  f"{first['rss_before_mb']:>10.0f} {first['sequences']:>9} {first['tokens']:>10} {first['learned']:>10}")
        (lf, ls), (tf, _) = got["loracfg"], got["trl"]
        print(f"{name:<8} ratios   loracfg/TRL wall uncached {lf['wall'] / tf['wall']:.2f}, peak RSS "
              f"{lf['rss_mb'] / tf['rss_mb']:.2f}; loracfg cached/uncached {ls['wall'] / lf['wall']:.2f}")


if __name__ == "__main__":
    main()
