"""Two plans compared key by key, as `loracfg diff` prints them: the sections that decide a run
(TrainingArguments, LoraConfig, BitsAndBytesConfig, model, data, resolved values, versions)."""

from __future__ import annotations


def _flatten(prefix: str, value: object, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def render_diff(a: dict, b: dict, name_a: str, name_b: str) -> str:
    out: list[str] = []
    sections = ("training", "lora", "quantization", "model", "data", "resolved", "compiled_for")
    flat_a: dict = {}
    flat_b: dict = {}
    for s in sections:
        _flatten(s, a.get(s) or {}, flat_a)
        _flatten(s, b.get(s) or {}, flat_b)
    keys = [k for k in dict.fromkeys([*flat_a, *flat_b]) if flat_a.get(k, "<unset>") != flat_b.get(k, "<unset>")]
    out.append(f"--- {name_a}\n+++ {name_b}")
    if not keys:
        out.append("no differences")
        return "\n".join(out)
    width = max(len(k) for k in keys)
    for k in keys:
        shown = k.split(".", 1)[1] if k.startswith(("training.", "lora.", "quantization.")) else k
        out.append(f"{shown.ljust(width)}  {flat_a.get(k, '<unset>')!r} -> {flat_b.get(k, '<unset>')!r}")
    return "\n".join(out)
