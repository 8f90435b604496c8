"""Every rule: registered once, documented in ruff's form, and caught on a bad fixture / quiet on a good one.

Fixtures live in fixtures/<CODE>/<group>/{bad,good}-*.yaml. Each is an option file of a user's
config directory that extends a shipped option through Hydra's defaults list. A bad fixture
marks the line the diagnostic must point at with ``# expect: CODE full.key``; ``# with: ...``
adds overrides (e.g. the hardware).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from loracfg.compiler.lint.check import lint_composition
from loracfg.compiler.lint.compose import Composer
from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules import ALL_CODES, RULES

FIXTURES = Path(__file__).parent / "fixtures"
EXPECT = re.compile(r"#\s*expect:\s*(?P<code>[A-Z]\d+)\s+(?P<key>\S+)(?:\s+(?P<severity>error|warning|info))?")
SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead")


def _fixtures(kind: str) -> list[Path]:
    return sorted(FIXTURES.glob(f"*/*/{kind}-*.yaml"))


def _compose_fixture(path: Path, *extra: str):
    code_dir = path.parents[1]
    text = path.read_text()
    with_ = re.search(r"^#\s*with:\s*(.*)$", text, re.M)
    overrides = (with_.group(1).split() if with_ else []) + [f"{path.parent.name}={path.stem}", *extra]
    with Composer(code_dir) as composer:
        return lint_composition(composer, overrides), overrides


def _expected_col(line: str, key: str) -> int:
    """1-based column of the value a key's diagnostic must point at: the value after 'name:', or for
    'name[i]' the i-th item of a flow list, read with the YAML parser."""
    import yaml

    value_col = line.index(":") + 3
    item = re.search(r"\[(\d+)\]$", key)
    if not item:
        return value_col
    node = yaml.compose(line.split("#", 1)[0])
    [(_, seq)] = node.value
    return seq.value[int(item.group(1))].start_mark.column + 1


def test_codes_are_unique_and_well_formed():
    codes = [c.code for c in ALL_CODES.values()]
    assert len(codes) == len(set(codes))
    rule_codes = [r.code for r in RULES]
    assert len(rule_codes) == len(set(rule_codes)) == 40
    names = [c.name for c in ALL_CODES.values()]
    assert len(names) == len(set(names))
    for c in ALL_CODES.values():
        assert re.fullmatch(r"[CSLH]\d{3}", c.code), c.code
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", c.name), c.name
        assert isinstance(c.severity, Severity)


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_every_code_is_documented_in_ruff_form(code):
    doc = ALL_CODES[code].doc
    positions = [doc.find(s) for s in SECTIONS]
    assert all(p >= 0 for p in positions), f"{code} lacks one of {SECTIONS}"
    assert positions == sorted(positions), f"{code}: sections out of order"
    for a, b in zip(SECTIONS, SECTIONS[1:] + ("",)):
        body = doc.split(a, 1)[1].split(b, 1)[0] if b else doc.split(a, 1)[1]
        assert body.strip(), f"{code}: section {a!r} is empty"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_rule_has_a_bad_and_a_good_fixture(rule):
    assert list(FIXTURES.glob(f"{rule.code}/*/bad-*.yaml")), f"no bad fixture for {rule.code}"
    assert list(FIXTURES.glob(f"{rule.code}/*/good-*.yaml")), f"no good fixture for {rule.code}"


@pytest.mark.parametrize("path", _fixtures("bad"), ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_bad_fixture_is_reported_at_the_marked_line(path):
    lines = path.read_text().splitlines()
    marks = [(i + 1, m) for i, line in enumerate(lines) if (m := EXPECT.search(line))]
    assert marks, f"{path} has no '# expect:' mark"
    diags, overrides = _compose_fixture(path)
    shown = "\n".join(f"{d.location}: {d.code} {d.key} {d.message}" for d in diags)
    for line, m in marks:
        hits = [d for d in diags if d.code == m["code"] and d.key == m["key"]]
        assert hits, f"{m['code']} on {m['key']} not reported for {overrides}; got:\n{shown}"
        d = hits[0]
        assert Path(d.location.file).resolve() == path.resolve(), shown
        assert d.location.line == line, shown
        assert d.location.col == _expected_col(lines[line - 1], m["key"]), shown
        expected = Severity(m["severity"]) if m["severity"] else ALL_CODES[m["code"]].severity
        assert d.message and d.severity == expected, shown


@pytest.mark.parametrize("path", _fixtures("bad"), ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_the_help_override_fixes_what_it_names(path):
    """Each marked finding's ``help:`` line, applied as overrides, makes that finding go away."""
    marks = [m for line in path.read_text().splitlines() if (m := EXPECT.search(line))]
    diags, _ = _compose_fixture(path)
    for m in marks:
        [d] = [d for d in diags if d.code == m["code"] and d.key == m["key"]][:1]
        if not d.fix:
            assert not d.code.startswith("L"), f"rule {d.code} on {d.key} gives no help: override"
            continue  # some composition errors (C006 broken interpolation) have no single override to offer
        for fix in d.fix.split(";"):  # a rule may offer alternatives ('a=1 b=2; c=3')
            fixed, overrides = _compose_fixture(path, *fix.split())
            again = [(f.code, f.key, f.message) for f in fixed if f.code == m["code"] and f.key == m["key"]]
            assert not again, f"help '{fix.strip()}' did not fix {m['code']} on {m['key']} ({overrides}): {again}"


@pytest.mark.parametrize("path", _fixtures("good"), ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_good_fixture_is_quiet_for_its_code(path):
    code = path.parents[1].name
    diags, overrides = _compose_fixture(path)
    assert [d for d in diags if d.code == code] == [], overrides
    assert not [d for d in diags if d.severity == Severity.ERROR], [(d.code, d.message) for d in diags]
