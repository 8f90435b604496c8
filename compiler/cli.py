"""``loracfg``: the command line, a thin layer over the stages. ``lint`` checks configs, ``train`` runs the
Hydra app, ``rule`` explains a code.

Exit codes: 0 no error-severity finding, 1 at least one (or bad input), 2 a wrong command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from loracfg.compiler.lint import render as lint_render
from loracfg.compiler.settings import SettingsError
from loracfg.compiler.settings import load as load_settings


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
    lint.add_argument("-o", "--output-format", choices=lint_render.FORMATS, default="text")
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

    sub.add_parser("train", add_help=False, help="compose, lint, compile and train: the Hydra app (OVERRIDES, -m, --cfg job, "
                   "hydra/launcher=slurm; --help shows Hydra's help)",
                   description="The same Hydra app as train.py, with ./conf as the primary config dir (loracfg's "
                               "shipped groups after it).").add_argument("hydra_args", nargs=argparse.REMAINDER)
    run = sub.add_parser("run", help="train a compiled plan (python -m loracfg.runner PLAN does the same)")
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

    exp = sub.add_parser("export", help="a run's adapter, or the model with it merged, with a model card",
                         description="Write a finished run's adapter and tokenizer (chat template included) as a "
                                     "PEFT folder, or with --merge the base with the adapter merged in (safetensors, "
                                     "tokenizer, generation config); a README.md model card carries the run's config, "
                                     "plan hash, versions, data, metrics and lint result. Needs the train extra.")
    exp.add_argument("run_dir", type=Path)
    exp.add_argument("-o", "--output", type=Path, required=True, help="the folder to write (must not exist)")
    exp.add_argument("--merge", action="store_true", help="merge the adapter into the base (a 4-bit base is "
                     "de-quantized to the compute dtype first)")
    exp.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    exp.add_argument("--allow-unfinished", action="store_true", help="export the last complete checkpoint of a "
                     "run that did not finish")
    exp.add_argument("--base", default=None, help="the base model's directory, where it is not (any longer) where "
                     "the run's model.name_or_path says")

    gen = sub.add_parser("generate", help="answer a prompt with a run's base + adapter (greedy)",
                         description="Load the run's base and adapter the way it trained (quantization included), "
                                     "apply its chat template, and print the greedy answer. Needs the train extra.")
    gen.add_argument("run_dir", type=Path)
    gen.add_argument("prompt", nargs="?", default=None)
    gen.add_argument("--messages", type=Path, default=None, help="a JSON file: a list of {role, content} messages")
    gen.add_argument("--max-new-tokens", type=int, default=64)
    gen.add_argument("--allow-unfinished", action="store_true")
    gen.add_argument("--base", default=None)

    runs = sub.add_parser("runs", help="every run under a folder: model, method, differing settings, status, loss",
                          description="One line per run directory (single runs and sweep points alike): run id, "
                                      "model, method, the settings that differ between the runs, final eval loss, "
                                      "wall time and status (finished, running, stopped at step N, failed: why).")
    runs.add_argument("output_dir", type=Path, nargs="?", default=Path("runs"))
    runs.add_argument("-o", "--output-format", choices=("text", "json"), default="text")

    rule = sub.add_parser("rule", help="explain a rule code (or --all)")
    rule.add_argument("code", nargs="?", help="a code such as L003, or a rule name")
    rule.add_argument("--all", action="store_true", help="every rule and check")
    rule.add_argument("-o", "--output-format", choices=("text", "json"), default="text")
    return parser


def _lint(ns: argparse.Namespace) -> int:
    from loracfg.compiler.lint.check import lint
    from loracfg.compiler.lint.compose import GROUPS

    try:
        settings = load_settings()
    except SettingsError as e:
        print(f"loracfg: {e}", file=sys.stderr)
        return 1
    result = lint(ns.args, ns.config_dir, settings)
    output = lint_render.render(result, ns.output_format)
    if output:
        print(output)
    for f in result.skipped:  # pre-commit passes every YAML file: say which were not linted, and why
        print(f"loracfg lint: skipped {f}: not an option of a config group ({', '.join(GROUPS)}) nor a "
              f"config.yaml", file=sys.stderr)
    return 1 if result.has_errors and not ns.exit_zero else 0


def _rule(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from loracfg.compiler.lint.rules import ALL_CODES, lookup

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
    from loracfg.compiler.files import write_atomically
    from loracfg.compiler.pipeline import compile_run
    from loracfg.compiler.plan import build as plan_module
    from loracfg.compiler.plan import hf
    from loracfg.compiler.plan.summary import summary

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
        print(lint_render.render(result.lint, "text"), file=sys.stderr if result.ok else sys.stdout)
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


def _diff_side(arg: str, config_dir: Path | None) -> tuple[dict | None, str]:
    from loracfg.compiler.pipeline import compile_run

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
        print(lint_render.render(result.lint, "text"), file=sys.stderr)
        print(f"loracfg diff: '{arg}' does not compile", file=sys.stderr)
        return None, arg
    return result.plan, arg or "(defaults)"


def _train_extra_missing(command: str) -> bool:
    """True (and says which extra to install) where the command needs the train extra and it is not there."""
    from loracfg.compiler.plan import hf

    try:
        hf.require_train_extra(command)
    except hf.MissingExtra as e:
        print(f"loracfg: {e}", file=sys.stderr)
        return True
    return False


def _diff(ns: argparse.Namespace) -> int:
    from loracfg.compiler.plan.diff import render_diff

    if _train_extra_missing("diff"):
        return 1
    (a, name_a), (b, name_b) = _diff_side(ns.a, ns.config_dir), _diff_side(ns.b, ns.config_dir)
    if a is None or b is None:
        return 1
    print(render_diff(a, b, name_a, name_b))
    return 0


def _estimate(ns: argparse.Namespace) -> int:
    from loracfg.compiler.estimate.memory import estimate
    from loracfg.compiler.estimate.render import render_text
    from loracfg.compiler.lint.check import LintResult, default_config_dir, finalize
    from loracfg.compiler.lint.compose import Composer
    from loracfg.compiler.lint.validate import validate

    root = ns.config_dir or default_config_dir()
    with Composer(root) as composer:  # provenance (where a bad value came from) needs Hydra still set up
        comp, diags = composer.compose(ns.overrides)
        if comp is not None and not diags:
            diags = validate(comp)
        result = finalize(diags, load_settings(), LintResult(compositions=1))
    if comp is None or result.has_errors:
        print(lint_render.render(result, "text"), file=sys.stderr)
        print("loracfg estimate: the composition is not valid; fix the errors above.", file=sys.stderr)
        return 1
    est = estimate(comp.config)
    if ns.output_format == "json":
        print(json.dumps(est.as_json(), indent=2))
    else:
        print(render_text(est, comp.config))
    return 0


def _data(ns: argparse.Namespace) -> int:
    from loracfg.compiler.pipeline import compile_run

    if _train_extra_missing("data"):
        return 1
    result = compile_run(ns.overrides, ns.config_dir, load_settings(), build_objects=False)
    if not result.ok:
        print(lint_render.render(result.lint, "text"), file=sys.stderr)
        print("loracfg data: the composition has errors; fix them first.", file=sys.stderr)
        return 1
    from loracfg.runner.data.inspect import inspect, render
    from loracfg.runner.errors import RunError

    try:
        info = inspect(result.plan)
    except RunError as e:
        print(f"loracfg data: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(info, indent=2) if ns.output_format == "json" else render(info, color=sys.stdout.isatty()))
    return 0


def _report(ns: argparse.Namespace) -> int:
    from loracfg.compiler.sweep import report as sweep_report

    try:
        data = sweep_report.write(ns.sweep_dir)
    except (FileNotFoundError, ImportError) as e:
        print(f"loracfg report: {e}", file=sys.stderr)
        return 1
    print((ns.sweep_dir / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {ns.sweep_dir / 'report.md'}, report.json and loss_curves.png ({data['curves']} curves); "
          f"best: {data['best'] or 'none finished yet'}")
    return 0


def _use(ns: argparse.Namespace) -> int:
    """export, generate, runs: what a run left behind, used."""
    from loracfg.runner.errors import RunError

    try:
        if ns.command == "runs":
            from loracfg.runner import runs

            rows = runs.collect(ns.output_dir)
            print(json.dumps(rows, indent=2) if ns.output_format == "json" else runs.render(rows))
            return 0
        from loracfg.compiler.plan.hf import MissingExtra, require_train_extra

        try:
            require_train_extra(ns.command)
        except MissingExtra as e:
            print(f"loracfg {ns.command}: {e}", file=sys.stderr)
            return 1
        from loracfg.runner import export

        if ns.command == "export":
            done = export.export(ns.run_dir, ns.output, merge=ns.merge, force=ns.force,
                                 allow_unfinished=ns.allow_unfinished, base=ns.base)
            print(f"wrote {done['out']}: {done['how']} (from {done['adapter']})")
            return 0
        messages = None
        if ns.messages is not None:
            messages = _messages(ns.messages)
        elif ns.prompt is None:
            print("loracfg generate: give a prompt, or --messages FILE", file=sys.stderr)
            return 2
        print(export.generate(ns.run_dir, ns.prompt, messages, ns.max_new_tokens, ns.allow_unfinished, ns.base))
        return 0
    except RunError as e:
        print(f"loracfg {ns.command}: error: {e}", file=sys.stderr)
        return 1


def _messages(path: Path) -> list[dict[str, str]]:
    from loracfg.runner.errors import RunError

    try:
        messages = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"--messages {path}: not a readable JSON file ({e})") from e
    if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("role"), str) and
                                                 isinstance(m.get("content"), str) for m in messages):
        raise RunError(f"--messages {path}: expected a list of {{\"role\": ..., \"content\": ...}} objects")
    return messages


def _train(args: Sequence[str]) -> int:
    """Hydra parses its own command line (-m, --cfg, --config-dir, hydra/launcher=...): hand it over untouched."""
    from loracfg.runner.train import main as train_main

    train_main(argv=list(args), prog="loracfg train")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `loracfg lint | head`: the reader left; exit quietly as other CLI tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["train"]:
        return _train(args[1:])
    parser = _parser()
    ns = parser.parse_args(args)
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
    if ns.command in ("export", "generate", "runs"):
        return _use(ns)
    if ns.command == "run":
        from loracfg.runner.__main__ import main as run_main

        return run_main([str(ns.plan)])
    return _rule(ns, parser)


if __name__ == "__main__":
    sys.exit(main())
