"""The linter: compose -> schema -> rules for each composition asked for, then suppress and report once.

What gets composed:
- nothing named: the default composition and each option file of each group of the config
  directory, composed with the defaults (``lora=r64``, ``model=bert-base``, ...);
- overrides: that one composition;
- files (what pre-commit passes): each option file as part of a composition (``group=option``),
  ``config.yaml`` as the default composition; files outside the run's groups are skipped.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from loracfg.compiler.lint import codes
from loracfg.compiler.lint.compose import GROUPS, PRIMARY, Composer, Composition
from loracfg.compiler.lint.diagnostics import (
    COMMAND_LINE,
    Diagnostic,
    Location,
    Severity,
)
from loracfg.compiler.lint.env_values import redact
from loracfg.compiler.lint.rules import RULES
from loracfg.compiler.lint.rules._base import LintContext
from loracfg.compiler.lint.validate import validate
from loracfg.compiler.lint.yamlpos import source_line
from loracfg.compiler.resources import shipped_conf_dir
from loracfg.compiler.settings import Settings

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*))?\s*$")


@dataclass
class LintResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    compositions: int = 0
    suppressed: int = 0
    skipped: list[str] = field(default_factory=list)  # files given that are no option of a run group

    def count(self, severity: Severity) -> int:
        return sum(d.severity == severity for d in self.diagnostics)

    @property
    def has_errors(self) -> bool:
        return self.count(Severity.ERROR) > 0


def lint_composition(composer: Composer, overrides: Sequence[str] = ()) -> list[Diagnostic]:
    """Every diagnostic of one composition, unsuppressed."""
    return check_composition(composer, overrides)[1]


def check_composition(composer: Composer, overrides: Sequence[str] = ()) -> tuple[Composition | None, list[Diagnostic]]:
    """Compose, validate, run the rules. Rules only see schema-valid configs."""
    return _check(*composer.compose(overrides))


def check_adopted(composer: Composer, cfg: Any, overrides: Sequence[str], choices: dict[str, str]
                  ) -> tuple[Composition | None, list[Diagnostic]]:
    """Validate and run the rules on a config a Hydra app composed already (``Composer.adopt``)."""
    return _check(*composer.adopt(cfg, overrides, choices))


# What a rule may raise on a config that failed its schema (a string where it does arithmetic, a missing key)
_RULE_ON_INVALID = (TypeError, KeyError, AttributeError, ValueError, IndexError, ZeroDivisionError, OverflowError)


def _check(comp: Composition | None, diags: list[Diagnostic]) -> tuple[Composition | None, list[Diagnostic]]:
    """Validate, then run every rule, as ruff does: beside schema errors too, so a user sees every problem in
    one run. There a rule that trips over a value of the wrong type is skipped, and a finding on a key (or
    below a key) the schema already reported is dropped."""
    if comp is None or any(d.severity == Severity.ERROR for d in diags):
        return comp, diags
    diags.extend(validate(comp))
    invalid = {d.key for d in diags if d.severity == Severity.ERROR and d.key}
    ctx = LintContext(comp)
    for rule in RULES:
        assert rule.check is not None
        try:
            findings = list(rule.check(ctx))
        except _RULE_ON_INVALID:
            if not invalid:
                raise
            continue
        for f in findings:
            if invalid and any(f.key == k or f.key.startswith((f"{k}.", f"{k}[")) for k in invalid):
                continue
            diags.append(Diagnostic(rule.code, f.severity or rule.severity, f.message, f.key,
                                    comp.locate(f.key), f.fix, comp.overrides))
    return comp, diags


def lint_config(config: dict[str, Any], overrides: Sequence[str] = (), where: str = "plan.json"
                ) -> list[Diagnostic]:
    """Schema and rules on an already composed config (a run's ``plan.json``), without its files: every
    diagnostic is located at ``where``. What ``loracfg export`` writes into the model card."""
    import copy

    location = Location(where)
    comp = Composition(tuple(overrides), copy.deepcopy(config), {}, lambda: ({}, location))
    return _check(comp, [])[1]


def default_config_dir(cwd: Path | None = None) -> Path:
    """The user's ``conf/`` in the working directory, else loracfg's shipped one."""
    own = (cwd or Path.cwd()) / "conf"
    return own if (own / PRIMARY).with_suffix(".yaml").is_file() or any((own / g).is_dir() for g in GROUPS) \
        else shipped_conf_dir()


@dataclass
class _Plan:
    by_dir: dict[Path, list[tuple[str, ...]]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    every_option: bool = False  # also each option file of the config dir, composed with the defaults
    files: set[tuple[str, ...]] = field(default_factory=set)  # runs that lint an option file (not user overrides)
    skipped: list[str] = field(default_factory=list)  # files given that are no option of a run group

    def add(self, config_dir: Path, overrides: Iterable[str], from_file: bool = False) -> None:
        runs = self.by_dir.setdefault(config_dir.resolve(), [])
        t = tuple(overrides)
        if t not in runs:
            runs.append(t)
        if from_file:
            self.files.add(t)


def _file_target(path: Path, config_dir: Path | None) -> tuple[Path, str | None] | None:
    """(config dir, 'group=option' or None for the default composition), or None if not a run config file."""
    if path.suffix not in (".yaml", ".yml"):
        return None
    path = path.resolve()
    if path.parent.name in GROUPS:
        root = path.parent.parent
        if config_dir is None or root == config_dir.resolve():
            return root, f"{path.parent.name}={path.stem}"
    if path.stem == PRIMARY and (config_dir is None or path.parent == config_dir.resolve()):
        return path.parent, None
    return None


def plan(args: Sequence[str], config_dir: Path | None) -> _Plan:
    files = [a for a in args if "=" not in a and not a.startswith(("~", "+"))]
    overrides = [a for a in args if a not in files]
    p = _Plan()
    if not files:
        root = config_dir or default_config_dir()
        p.add(root, overrides)
        p.every_option = not overrides
        return p
    for f in files:
        path = Path(f)
        if not path.is_file():
            p.diagnostics.append(Diagnostic(codes.MISSING_FILE.code, codes.MISSING_FILE.severity,
                                            f"no such file: '{f}'", None, Location(COMMAND_LINE, 1, 1)))
            continue
        target = _file_target(path, config_dir)
        if target is None:  # not a run config file (e.g. conf/hydra/launcher/*.yaml): nothing of ours to lint
            p.skipped.append(f)
            continue
        root, choice = target
        p.add(root, [*overrides, choice] if choice else overrides, from_file=bool(choice) and not overrides)
    return p


def _noqa(diag: Diagnostic) -> bool:
    loc = diag.location
    if loc.file == COMMAND_LINE:
        return False
    m = NOQA.search(source_line(loc.file, loc.line))
    if not m:
        return False
    listed = m.group("codes")
    return listed is None or diag.code in {c.upper() for c in re.split(r"[\s,]+", listed) if c}


def lint(args: Sequence[str] = (), config_dir: Path | None = None, settings: Settings | None = None) -> LintResult:
    settings = settings or Settings()
    p = plan(args, config_dir)
    result = LintResult(skipped=p.skipped)
    raw = list(p.diagnostics)
    for root, runs in p.by_dir.items():
        if not root.is_dir():
            raw.append(Diagnostic(codes.MISSING_FILE.code, codes.MISSING_FILE.severity,
                                  f"config directory '{root}' does not exist", None, Location(COMMAND_LINE, 1, 1)))
            continue
        with Composer(root) as composer:
            default: Composition | None = None
            # many option files given (pre-commit --all-files): composed in batches, as lint of every option is
            files = [r for r in runs if r in p.files]
            batched = _each_option(composer, [tuple(r[0].split("=", 1)) for r in files], _default(composer)) \
                if len(files) >= _BATCH_FROM else {}
            known = _known(batched.values())
            for overrides in runs:
                result.compositions += 1
                comp, diags = batched[overrides] if overrides in batched else composer.compose(overrides)
                if not overrides and not diags:
                    default = comp
                if overrides in p.files and not diags:
                    comp, diags = _runnable(composer, overrides, comp, diags, known)
                raw.extend(_check(comp, diags)[1])
            if p.every_option:
                chosen = default.choices if default else {}
                options = [(g, o) for g in GROUPS for o in composer.options(g, own_only=True) if chosen.get(g) != o]
                each = _each_option(composer, options, default)
                # each option's own node, as composed with the defaults: what a partner search reads first
                known = {(g, chosen[g]): default.config[g] for g in GROUPS if g in chosen} if default else {}
                known.update(_known(each.values()))
                for choice, (comp, diags) in each.items():
                    result.compositions += 1
                    if not diags:
                        comp, diags = _runnable(composer, choice, comp, diags, known)
                    raw.extend(_check(comp, diags)[1])
    return finalize(raw, settings, result)


# From this many option files given, they are composed in batches (one default compose first, then
# Composer.compose_each_option); one or a few, as pre-commit passes after an edit, are composed each alone.
_BATCH_FROM = 4


def _default(composer: Composer) -> Composition | None:
    """The default composition, the base the batches swap options into (None where it has a diagnostic)."""
    default, diags = composer.compose(())
    return None if diags else default


def _each_option(composer: Composer, options: Sequence[tuple[str, str]], default: Composition | None
                 ) -> dict[tuple[str, ...], tuple[Composition | None, list[Diagnostic]]]:
    return {choice: (comp, diags) for choice, comp, diags in composer.compose_each_option(options, default)}


def _known(composed: Iterable[tuple[Composition | None, list[Diagnostic]]]) -> dict[tuple[str, str], Any]:
    """(group, option) -> the option's node, of compositions of one option each with the defaults."""
    return {(g, comp.choices[g]): comp.config[g] for comp, diags in composed if comp is not None and not diags
            for g in [comp.overrides[0].split("=", 1)[0]]}


def _runnable(composer: Composer, choice: tuple[str, ...], comp: Composition | None, diags: list[Diagnostic],
              known: dict[tuple[str, str], Any] | None = None) -> tuple[Composition | None, list[Diagnostic]]:
    """An option file is linted with the defaults of the other groups, unless it cannot run with them at all:
    a seq-cls model option and the default text data, a classification data option and the default causal LM,
    an 8-bit quant option and CPU hardware. Then it is linted with the first option of the other group it can
    run with (say 'data=tiny-sentiment', 'hardware=a100-40g'). ``known``: options' nodes already composed
    (lint of every option): an option whose node cannot be the partner is not composed to find out."""
    from loracfg.compiler.lint.rules.bitsandbytes_without_cuda import eight_bit_off_cuda
    from loracfg.compiler.lint.rules.data_format_mismatches_task import feeds

    def runs(cfg: dict) -> bool:
        return feeds(cfg["model"]["task"], cfg["data"]["format"]) and not eight_bit_off_cuda(cfg)

    group = choice[0].split("=", 1)[0] if len(choice) == 1 else None
    if comp is None or group not in ("model", "data", "quant") or runs(comp.config):
        return comp, diags
    other = {"model": "data", "data": "model", "quant": "hardware"}[group]
    for option in composer.options(other):
        node = (known or {}).get((other, option))
        if node is not None and not runs({**comp.config, other: node}):
            continue
        candidate, found = composer.compose([*choice, f"{other}={option}"])
        if candidate is not None and not found and runs(candidate.config):
            return candidate, found
    return comp, diags


def finalize(raw: Iterable[Diagnostic], settings: Settings, result: LintResult) -> LintResult:
    """Deduplicate, apply ``# noqa`` and ``[tool.loracfg]``, sort: what gets reported."""
    seen: set[tuple] = set()
    for d in raw:
        d = dataclasses.replace(d, message=redact(d.message), fix=redact(d.fix))
        if d.dedupe_key in seen:
            continue
        seen.add(d.dedupe_key)
        if _noqa(d) or settings.ignored(d.code, d.location.file):
            result.suppressed += 1
            continue
        result.diagnostics.append(d)
    result.diagnostics.sort(key=lambda d: (d.location.file == COMMAND_LINE, d.location.file,
                                           d.location.line, d.location.col, d.code))
    return result
