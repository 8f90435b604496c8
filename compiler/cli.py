"""``loracfg``: the command line. ``lint`` checks configs, ``rule`` explains a code.

Exit codes: 0 no error-severity finding, 1 at least one (or bad input), 2 a wrong command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from compiler import report
from compiler.settings import SettingsError
from compiler.settings import load as load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loracfg", description="Lint and compile LoRA / QLoRA fine-tuning configs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    lint = sub.add_parser("lint", help="lint config compositions (schemas + LoRA rules)",
                          description="Lint the default composition and every option file (no arguments), one "
                                      "composition (Hydra overrides), or the given option files (what pre-commit "
                                      "passes).")
    lint.add_argument("args", nargs="*", metavar="OVERRIDE|FILE",
                      help="Hydra overrides such as lora=r64 schedule.learning_rate=1e-4, or conf/ files")
    lint.add_argument("--config-dir", type=Path, default=None,
                      help="your config directory (default: ./conf if it exists, else loracfg's shipped conf/)")
    lint.add_argument("-o", "--output-format", choices=report.FORMATS, default="text")
    lint.add_argument("--exit-zero", action="store_true", help="exit 0 even when errors are found")

    comp = sub.add_parser("compile", help="compile one composition into plan.json (or a standalone script)",
                          description="Lint one composition; if it has no error, compile it into a plan for the "
                                      "installed transformers/peft, build the Hugging Face objects to check them, "
                                      "print a summary and write the plan.")
    comp.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    comp.add_argument("--config-dir", type=Path, default=None)
    comp.add_argument("--emit", choices=("plan", "python"), default="plan",
                      help="plan: plan.json; python: a standalone script using plain transformers + peft")
    comp.add_argument("-o", "--output", type=Path, default=None,
                      help="where to write (default: plan.json, or train_lora.py with --emit python)")

    diff = sub.add_parser("diff", help="what differs between two compiled runs, key by key",
                          description="Each of A and B is a plan.json file or a quoted set of overrides, "
                                      "e.g. loracfg diff 'lora=r16' 'lora=r64 schedule=linear'.")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--config-dir", type=Path, default=None)

    run = sub.add_parser("run", help="train a compiled plan (python -m runner PLAN does the same)")
    run.add_argument("plan", type=Path)

    rep = sub.add_parser("report", help="compare the points of a sweep: table (Markdown, JSON) and loss-curve plot")
    rep.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory of train.py (local or SLURM)")

    est = sub.add_parser("estimate", help="parameters, memory per device and the largest micro-batch that fits",
                         description="From the config alone (no weights, no torch): total and trainable "
                                     "parameters, the peak memory of a training step on one device with its "
                                     "breakdown, whether it fits the hardware, the largest per-device batch that "
                                     "does, and the steps the schedule means.")
    est.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    est.add_argument("--config-dir", type=Path, default=None)
    est.add_argument("-o", "--output-format", choices=("text", "json"), default="text")

    dat = sub.add_parser("data", help="what the run's data becomes: rows, lengths, truncation, masking, an example",
                         description="Read and prepare one composition's data with its tokenizer exactly as the "
                                     "runner does, before any GPU time, and print the statistics and one rendered "
                                     "example with its learned part marked. Needs the train extra (a tokenizer).")
    dat.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    dat.add_argument("--config-dir", type=Path, default=None)
    dat.add_argument("-o", "--output-format", choices=("text", "json"), default="text")

    rule = sub.add_parser("rule", help="explain a rule code (or --all)")
    rule.add_argument("code", nargs="?", help="a code such as L003, or a rule name")
    rule.add_argument("--all", action="store_true", help="every rule and check")
    rule.add_argument("-o", "--output-format", choices=("text", "json"), default="text")
    return parser


def _lint(ns: argparse.Namespace) -> int:
    from compiler.compose import GROUPS
    from compiler.lint import lint

    try:
        settings = load_settings()
    except SettingsError as e:
        print(f"loracfg: {e}", file=sys.stderr)
        return 1
    result = lint(ns.args, ns.config_dir, settings)
    output = report.render(result, ns.output_format)
    if output:
        print(output)
    for f in result.skipped:  # pre-commit passes every YAML file: say which were not linted, and why
        print(f"loracfg lint: skipped {f}: not an option of a config group ({', '.join(GROUPS)}) nor a "
              f"config.yaml", file=sys.stderr)
    return 1 if result.has_errors and not ns.exit_zero else 0


def _rule(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from compiler.rules import ALL_CODES, lookup

    if ns.all:
        codes = list(ALL_CODES.values())
    elif ns.code:
        code = lookup(ns.code)
        if code is None:
            known = ", ".join(ALL_CODES)
            print(f"loracfg rule: unknown code or rule name '{ns.code}'. Known codes: {known}", file=sys.stderr)
            return 2
        codes = [code]
    else:
        parser.error("rule: give a CODE or --all")
    if ns.output_format == "json":
        data = [{"code": c.code, "name": c.name, "severity": c.severity.value, "stage": c.stage,
                 "explanation": c.doc} for c in codes]
        print(json.dumps(data if ns.all else data[0], indent=2))
    else:
        print("\n".join(c.render() for c in codes))
    return 0


def _compile(ns: argparse.Namespace) -> int:
    from compiler import hf, plan as plan_module
    from compiler.files import write_atomically
    from compiler.pipeline import compile_run

    try:
        hf.require_train_extra("compile")
        settings = load_settings()
    except (hf.MissingExtra, SettingsError) as e:
        print(f"loracfg: {e}", file=sys.stderr)
        return 1
    out = ns.output or Path("train_lora.py" if ns.emit == "python" else "plan.json")
    unwritable = _unwritable(out)
    if unwritable:  # before the compile, not after it
        print(f"loracfg compile: cannot write {out}: {unwritable}; pass -o a file path", file=sys.stderr)
        return 1
    result = compile_run(ns.overrides, ns.config_dir, settings)
    if result.lint.diagnostics:
        print(report.render(result.lint, "text"), file=sys.stderr if result.ok else sys.stdout)
    if not result.ok:
        print("loracfg compile: not compiled; fix the errors above.", file=sys.stderr)
        return 1
    plan = result.plan
    text = hf.emit_python(plan) if ns.emit == "python" else plan_module.dumps(plan)
    print(summary(plan, result.notes))
    write_atomically(out, text)
    print(f"wrote {out} ({'standalone script' if ns.emit == 'python' else 'plan'} {plan['hash'][:19]})")
    return 0


def _unwritable(out: Path) -> str | None:
    """Why ``out`` cannot be written as a file (None if it can)."""
    if out.is_dir():
        return "it is a directory"
    for parent in out.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is a file, not a directory"
    return None


def summary(plan: dict, notes: list[str]) -> str:
    m, r, v = plan["model"], plan["resolved"], plan["compiled_for"]
    lora = plan["lora"]["LoraConfig"]
    q = plan["quantization"]["BitsAndBytesConfig"] if plan["quantization"] else None
    method = ("QLoRA 4-bit " + q.get("bnb_4bit_quant_type", "")) if q and q.get("load_in_4bit") else \
        "LoRA on an 8-bit base" if q else "LoRA"
    variant = "DoRA " if lora.get("use_dora") else "rsLoRA " if lora.get("use_rslora") else ""
    ta = plan["training"]["TrainingArguments"]
    micro, accum = ta["per_device_train_batch_size"], ta["gradient_accumulation_steps"]
    lines = [
        f"model:      {m['name_or_path']} ({m['task']}, {m['auto_class']}{', built from config' if m['from_config'] else ''})",
        f"method:     {method}, {variant}r={lora['r']} alpha={lora['lora_alpha']} on {lora.get('target_modules')}",
        f"steps:      {r['total_steps']} optimizer steps ({r['epochs']:g} epochs x {r['steps_per_epoch']}/epoch), "
        f"warmup {r['warmup_steps']}",
        f"batch:      effective {r['effective_batch_size']} = {micro} x {accum} accumulation x {r['world_size']} device(s)",
        f"precision:  {r['precision']}, optimizer {r['optim']}",
        f"for:        transformers {v['transformers']}, peft {v['peft']}, torch {v['torch']}",
    ]
    lines += [f"resolved:   {d['argument']} = {d['value']!r}: {d['why']}" for d in plan["decisions"]]
    lines += [f"mapped:     {x['from']} -> {x['to']}: {x['why']}" for x in plan["mapping"]]
    lines += [f"note:       {n}" for n in notes]
    return "\n".join(lines)


def _flatten(prefix: str, value: object, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _diff_side(arg: str, config_dir: Path | None) -> tuple[dict | None, str]:
    from compiler.pipeline import compile_run

    path = Path(arg)
    if path.suffix == ".json" and path.is_file():
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            print(f"loracfg diff: {path} is not a plan (invalid JSON: {e})", file=sys.stderr)
            return None, arg
        if not isinstance(value, dict) or "plan_version" not in value or "hash" not in value:
            shape = f"a JSON {type(value).__name__}" + (" without plan_version and hash" if isinstance(value, dict)
                                                         else "")
            print(f"loracfg diff: {path} is not a plan ({shape}); write one with 'loracfg compile -o plan.json'",
                  file=sys.stderr)
            return None, arg
        return value, str(path)
    result = compile_run(arg.split(), config_dir, load_settings(), build_objects=False)
    if not result.ok:
        print(report.render(result.lint, "text"), file=sys.stderr)
        print(f"loracfg diff: '{arg}' does not compile", file=sys.stderr)
        return None, arg
    return result.plan, arg or "(defaults)"


def _train_extra_missing(command: str) -> bool:
    """True (and says which extra to install) where the command needs the train extra and it is not there."""
    from compiler import hf

    try:
        hf.require_train_extra(command)
    except hf.MissingExtra as e:
        print(f"loracfg: {e}", file=sys.stderr)
        return True
    return False


def _diff(ns: argparse.Namespace) -> int:
    if _train_extra_missing("diff"):
        return 1
    (a, name_a), (b, name_b) = _diff_side(ns.a, ns.config_dir), _diff_side(ns.b, ns.config_dir)
    if a is None or b is None:
        return 1
    sections = ("training", "lora", "quantization", "model", "data", "resolved", "compiled_for")
    flat_a: dict = {}
    flat_b: dict = {}
    for s in sections:
        _flatten(s, a.get(s) or {}, flat_a)
        _flatten(s, b.get(s) or {}, flat_b)
    keys = [k for k in dict.fromkeys([*flat_a, *flat_b]) if flat_a.get(k, "<unset>") != flat_b.get(k, "<unset>")]
    print(f"--- {name_a}\n+++ {name_b}")
    if not keys:
        print("no differences")
        return 0
    width = max(len(k) for k in keys)
    for k in keys:
        shown = k.split(".", 1)[1] if k.startswith(("training.", "lora.", "quantization.")) else k
        print(f"{shown.ljust(width)}  {flat_a.get(k, '<unset>')!r} -> {flat_b.get(k, '<unset>')!r}")
    return 0


def _estimate(ns: argparse.Namespace) -> int:
    from compiler.compose import Composer
    from compiler.estimate import estimate, render_text
    from compiler.lint import LintResult, default_config_dir, finalize
    from compiler.validate import validate

    root = ns.config_dir or default_config_dir()
    with Composer(root) as composer:  # provenance (where a bad value came from) needs Hydra still set up
        comp, diags = composer.compose(ns.overrides)
        if comp is not None and not diags:
            diags = validate(comp)
        result = finalize(diags, load_settings(), LintResult(compositions=1))
    if comp is None or result.has_errors:
        print(report.render(result, "text"), file=sys.stderr)
        print("loracfg estimate: the composition is not valid; fix the errors above.", file=sys.stderr)
        return 1
    est = estimate(comp.config)
    if ns.output_format == "json":
        print(json.dumps(est.as_json(), indent=2))
    else:
        print(render_text(est, comp.config))
    return 0


def _data(ns: argparse.Namespace) -> int:
    from compiler.pipeline import compile_run

    if _train_extra_missing("data"):
        return 1
    result = compile_run(ns.overrides, ns.config_dir, load_settings(), build_objects=False)
    if not result.ok:
        print(report.render(result.lint, "text"), file=sys.stderr)
        print("loracfg data: the composition has errors; fix them first.", file=sys.stderr)
        return 1
    from runner.data.inspect import inspect, render
    from runner.errors import RunError

    try:
        info = inspect(result.plan)
    except RunError as e:
        print(f"loracfg data: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(info, indent=2) if ns.output_format == "json" else render(info, color=sys.stdout.isatty()))
    return 0


def _report(ns: argparse.Namespace) -> int:
    from compiler import sweep_report

    try:
        data = sweep_report.write(ns.sweep_dir)
    except (FileNotFoundError, ImportError) as e:
        print(f"loracfg report: {e}", file=sys.stderr)
        return 1
    print((ns.sweep_dir / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {ns.sweep_dir / 'report.md'}, report.json and loss_curves.png ({data['curves']} curves); "
          f"best: {data['best'] or 'none finished yet'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    ns = parser.parse_args(argv)
    config_dir = getattr(ns, "config_dir", None)
    if ns.command != "lint" and config_dir is not None and not Path(config_dir).is_dir():  # lint: a diagnostic
        print(f"loracfg {ns.command}: --config-dir '{config_dir}' is not a directory; pass the folder that holds "
              f"config.yaml and the group folders (model/, lora/, ...)", file=sys.stderr)
        return 1
    if ns.command == "lint":
        return _lint(ns)
    if ns.command == "compile":
        return _compile(ns)
    if ns.command == "diff":
        return _diff(ns)
    if ns.command == "report":
        return _report(ns)
    if ns.command == "estimate":
        return _estimate(ns)
    if ns.command == "data":
        return _data(ns)
    if ns.command == "run":
        from runner.__main__ import main as run_main

        return run_main([str(ns.plan)])
    return _rule(ns, parser)


if __name__ == "__main__":
    sys.exit(main())
