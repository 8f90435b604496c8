"""Rendering a lint result: ruff-like text, JSON, and GitHub Actions annotations."""

from __future__ import annotations

import json

from loracfg.compiler.lint.check import LintResult
from loracfg.compiler.lint.diagnostics import COMMAND_LINE, Diagnostic, Severity
from loracfg.compiler.lint.rules import ALL_CODES
from loracfg.compiler.lint.yamlpos import source_line

FORMATS = ("text", "json", "github")


def _summary(result: LintResult) -> dict:
    return {
        "errors": result.count(Severity.ERROR),
        "warnings": result.count(Severity.WARNING),
        "info": result.count(Severity.INFO),
        "compositions": result.compositions,
        "suppressed": result.suppressed,
    }


_EXCERPT = 100  # characters of a source line shown under a diagnostic


def _source(d: Diagnostic) -> list[str]:
    loc = d.location
    if loc.file == COMMAND_LINE:
        return []
    text = source_line(loc.file, loc.line)
    if not text:
        return []
    width = len(str(loc.line))
    col = loc.col
    if len(text) > _EXCERPT:  # a window of the line around the column, not a screenful of a hostile file's line
        start = max(0, min(col - 1 - _EXCERPT // 2, len(text) - _EXCERPT))
        text = ("..." if start else "") + text[start:start + _EXCERPT] + ("..." if start + _EXCERPT < len(text) else "")
        col = col - start + (3 if start else 0)
    return [f"  {' ' * width} |", f"  {loc.line} | {text}", f"  {' ' * width} | {' ' * (col - 1)}^"]


def text(result: LintResult) -> str:
    out: list[str] = []
    for d in result.diagnostics:
        loc = d.location
        out.append(f"{loc.file}:{loc.line}:{loc.col}: {d.code} [{d.severity.value}] {d.message}")
        out.extend(_source(d))
        where = f"  in: {' '.join(d.composition)}" if d.composition else ""
        if d.key:
            out.append(f"   key: {d.key}{where}")
        elif where:
            out.append(f"  {where.strip()}")
        if d.fix:
            out.append(f"  help: {d.fix}")
        out.append("")
    s = _summary(result)
    counts = f"{s['errors']} error(s), {s['warnings']} warning(s), {s['info']} info"
    suffix = f" in {s['compositions']} composition(s)" + (f"; {s['suppressed']} suppressed" if s["suppressed"] else "")
    if result.diagnostics:
        out.append(f"Found {len(result.diagnostics)} problem(s): {counts}{suffix}.")
    else:
        out.append(f"All checks passed{suffix}.")
    return "\n".join(out)


def as_json(result: LintResult) -> str:
    diags = []
    for d in result.diagnostics:
        item = d.to_json()
        item["name"] = ALL_CODES[d.code].name if d.code in ALL_CODES else None
        diags.append(item)
    return json.dumps({"diagnostics": diags, "summary": _summary(result)}, indent=2)


def _escape(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github(result: LintResult) -> str:
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
    out = []
    for d in result.diagnostics:
        loc = d.location
        props = [] if loc.file == COMMAND_LINE else [f"file={loc.file}", f"line={loc.line}", f"col={loc.col}"]
        name = ALL_CODES[d.code].name if d.code in ALL_CODES else d.code
        props.append(f"title={d.code} {name}".replace(",", "%2C").replace(":", "%3A"))
        body = d.message + (f"\nkey: {d.key}" if d.key else "") + (f"\nhelp: {d.fix}" if d.fix else "")
        out.append(f"::{level[d.severity]} {','.join(props)}::{_escape(body)}")
    return "\n".join(out)


def render(result: LintResult, fmt: str) -> str:
    return {"text": text, "json": as_json, "github": github}[fmt](result)
