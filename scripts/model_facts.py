#!/usr/bin/env python
"""Write the architecture facts of a model option from its config.json (no weights, no download).

    # a new option for conf/model/ from a model's config.json
    python scripts/model_facts.py path/to/config.json --name my-model --name-or-path org/my-model \\
        [--task causal-lm|seq-cls|...] [--num-labels 2] > conf/model/my-model.yaml

    # refresh the facts of existing options in place (after editing their `config:`)
    python scripts/model_facts.py --refresh conf/model/*.yaml

The architecture is built with transformers on the meta device from the config.json keys that
schemas/model.schema.json knows (the others change no module shape and are listed on stderr);
`linear_modules` and `other_modules` are read off it by ``loracfg.compiler.plan.facts``. Needs the train extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FACTS_START = "linear_modules:"


def _scalar(v: Any) -> str:
    return "true" if v is True else "false" if v is False else "null" if v is None else str(v)


def _yaml_scalar(v: Any) -> str:
    """YAML 1.1 (what OmegaConf reads) takes 1e-06 for a string: write 1.0e-06."""
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).splitlines()[0]


def _flow(d: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in d.items()) + "}"


def facts_yaml(facts: dict[str, Any]) -> str:
    lines = [f"{FACTS_START}  # every nn.Linear by name: one entry per shape (generated: scripts/model_facts.py)"]
    for name, shapes in facts["linear_modules"].items():
        lines.append(f"  {name}: [{', '.join(_flow(s) for s in shapes)}]")
    lines.append("other_modules:  # the other modules with parameters (embeddings, norms), summed per name")
    for name, o in facts["other_modules"].items():
        lines.append(f"  {name}: {_flow(o)}")
    lines.append(f"no_split_modules: [{', '.join(facts['no_split_modules'])}]  # FSDP wraps each of these")
    return "\n".join(lines) + "\n"


def schema_config_keys() -> set[str]:
    schema = json.loads((ROOT / "schemas" / "model.schema.json").read_text())
    return set(schema["properties"]["config"]["properties"])


def config_section(config_json: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    known = schema_config_keys()
    kept = {k: v for k, v in config_json.items() if k in known and v is not None}
    return kept, sorted(k for k in config_json if k not in known)


def new_option(args: argparse.Namespace) -> str:
    from loracfg.compiler.plan.facts import facts_for

    raw = json.loads(Path(args.config_json).read_text())
    config, dropped = config_section(raw)
    if dropped:
        print(f"not kept (no module shape depends on them, or unknown to schemas/model.schema.json): "
              f"{', '.join(dropped)}", file=sys.stderr)
    section: dict[str, Any] = {"config": config, "task": args.task}
    if args.num_labels:
        section["num_labels"] = args.num_labels
    facts = facts_for(section)
    head = [
        "# yaml-language-server: $schema=../../schemas/model.schema.json",
        f"# model/{args.name}: {args.name_or_path} (facts generated from its config.json by scripts/model_facts.py)",
        f"# Used by: python train.py model={args.name}   |   loracfg lint model={args.name}",
        f"name_or_path: {args.name_or_path}",
        f"task: {args.task}",
        "from_config: false",
        "tokenizer_name_or_path: null",
        "trust_remote_code: false",
        "attn_implementation: sdpa",
        "config:",
        *(f"  {k}: {_yaml_scalar(v)}" for k, v in config.items()),
    ]
    if args.num_labels:
        head.append(f"num_labels: {args.num_labels}")
    return "\n".join(head) + "\n" + facts_yaml(facts)


def refresh(path: Path) -> bool:
    """Rewrite the facts at the end of an option file; True if they changed."""
    import yaml
    from loracfg.compiler.plan.facts import facts_for

    text = path.read_text()
    section = yaml.safe_load(text)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(FACTS_START)), None)
    kept = "".join(lines[:start]) if start is not None else text
    new = kept + facts_yaml(facts_for(section))
    if new == text:
        return False
    path.write_text(new)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config_json", nargs="?", help="a model's config.json")
    p.add_argument("--name", help="the option name (conf/model/NAME.yaml)")
    p.add_argument("--name-or-path", help="hub id or local directory for from_pretrained")
    p.add_argument("--task", default="causal-lm")
    p.add_argument("--num-labels", type=int)
    p.add_argument("--refresh", nargs="+", metavar="OPTION_YAML", help="rewrite the facts of these option files")
    args = p.parse_args(argv)
    if args.refresh:
        for f in args.refresh:
            print(f"{f}: {'updated' if refresh(Path(f)) else 'unchanged'}", file=sys.stderr)
        return 0
    if not args.config_json or not args.name or not args.name_or_path:
        p.error("give config_json, --name and --name-or-path (or --refresh FILES)")
    sys.stdout.write(new_option(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
