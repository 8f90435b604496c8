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

    rule = sub.add_parser("rule", help="explain a rule code (or --all)")
    rule.add_argument("code", nargs="?", help="a code such as L003, or a rule name")
    rule.add_argument("--all", action="store_true", help="every rule and check")
    rule.add_argument("-o", "--output-format", choices=("text", "json"), default="text")
    return parser


def _lint(ns: argparse.Namespace) -> int:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    ns = parser.parse_args(argv)
    if ns.command == "lint":
        return _lint(ns)
    return _rule(ns, parser)


if __name__ == "__main__":
    sys.exit(main())
