"""The model card (``README.md``) of an export: Hugging Face's layout (YAML front matter, then text) with the
run's provenance: the composed config, the plan hash, the versions that compiled, trained and exported it,
the data set, the final metrics and the lint result of the run's config under this loracfg."""

from __future__ import annotations

import json
from typing import Any

import yaml

PIPELINES = {"causal-lm": "text-generation", "seq-cls": "text-classification", "token-cls": "token-classification"}


def _method(plan: dict[str, Any]) -> str:
    cfg = plan["config"]
    name = "dora" if cfg["lora"].get("use_dora") else "lora"
    return ("q" + name) if cfg["quant"].get("load_in_4bit") else name


def front_matter(plan: dict[str, Any], merged: bool) -> dict[str, Any]:
    m = plan["model"]
    meta: dict[str, Any] = {}
    if not m["from_config"]:
        meta["base_model"] = m["name_or_path"]
    meta["library_name"] = "transformers" if merged else "peft"
    meta["tags"] = ["loracfg", _method(plan), m["task"], *(["merged"] if merged else [])]
    meta["pipeline_tag"] = PIPELINES.get(m["task"], m["task"])
    meta["loracfg"] = {"plan_hash": plan["hash"], "run_id": plan["run_id"]}
    return meta


def model_card(run: Any, merged: bool, how: str) -> str:
    from loracfg.compiler.lint.check import lint_config
    from loracfg.compiler.plan import hf

    plan, metrics = run.plan, run.metrics
    m, data = plan["model"], plan["data"]
    findings = lint_config(plan["config"], plan.get("overrides", ()))
    lint = "\n".join(f"- {d.code} [{d.severity.value}] {d.key}: {d.message}" for d in findings) or "- clean"
    stats = (metrics.get("data") or {}).get("train") or {}
    evals = (metrics.get("data") or {}).get("eval") or {}
    compiled, now = plan.get("compiled_for", {}), hf.installed_versions()
    versions = "\n".join(f"| {k} | {compiled.get(k)} | {now.get(k)} |" for k in sorted(set(compiled) | set(now)))
    shown = {k: metrics.get(k) for k in ("global_step", "initial_eval_loss", "final_eval_loss", "train_loss",
                                         "tokens_per_second", "wall_time_s", "world_size") if k in metrics}
    base = m["name_or_path"] + (" (built from its config with seeded random weights: model.from_config)"
                                if m["from_config"] else "")
    body = f"""# {m['name_or_path']} fine-tuned with {_method(plan).upper()} (loracfg run {plan['run_id']})

{'Merged model' if merged else 'Adapter'}: {how}.

- Base model: {base}
- Task: {m['task']}; adapter: r={plan['config']['lora']['r']}, lora_alpha={plan['config']['lora']['lora_alpha']}, \
targets {plan['lora']['LoraConfig'].get('target_modules')}
- Plan hash: `{plan['hash']}`
- Adapter taken from: `{run.adapter.name}`{'' if metrics.get('finished') else ' (the run did not finish)'}

## Data

- Source: {data.get('path') or data.get('builtin') or data.get('name')} (format {data.get('format')}, \
max_length {data.get('max_length')})
- Chat template: {(metrics.get('data') or {}).get('chat_template') or 'none'}
- Rows: {stats.get('rows')} train, {evals.get('rows') if evals else 0} eval

## Metrics

```json
{json.dumps(shown, indent=2)}
```

## Lint of the run's config (loracfg {now.get('loracfg') or plan.get('loracfg_version')})

{lint}

## Versions

| package | compiled with | exported with |
|---|---|---|
{versions}

## Composed config

```yaml
{yaml.safe_dump(plan['config'], sort_keys=False).strip()}
```
"""
    return "---\n" + yaml.safe_dump(front_matter(plan, merged), sort_keys=False) + "---\n\n" + body
