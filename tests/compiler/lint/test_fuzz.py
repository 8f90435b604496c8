"""Property: whatever a user does to a valid config, the linter ends with diagnostics or a clean result.

Hypothesis mutates real option files (values of other types, deleted and renamed keys,
broken YAML, interpolations, ``???``) and command-line overrides; ``lint`` must never raise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loracfg.compiler.lint.check import lint
from loracfg.compiler.lint.compose import GROUPS
from loracfg.compiler.lint.diagnostics import Diagnostic

ROOT = Path(__file__).resolve().parents[3]
OPTIONS = sorted(p.relative_to(ROOT / "conf") for g in GROUPS for p in (ROOT / "conf" / g).glob("*.yaml"))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["???", "${nope}", "${schedule.learning_rate}", "all-linear", "auto",
                                           "bfloat16", "paged_adamw_8bit", "-1", "1e-4", "[", "{a: 1}"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=3), max_leaves=6)


@st.composite
def mutation(draw):
    option = draw(st.sampled_from(OPTIONS))
    data = yaml.safe_load((ROOT / "conf" / option).read_text())
    keys = sorted(data)
    kind = draw(st.sampled_from(["set", "delete", "rename", "garbage", "override"]))
    text = None
    overrides: list[str] = [f"{option.parent}={option.stem}"]
    if kind == "set":
        data[draw(st.sampled_from(keys))] = draw(values)
    elif kind == "delete":
        data.pop(draw(st.sampled_from(keys)))
    elif kind == "rename":
        data[draw(st.text(min_size=1, max_size=10))] = data.pop(draw(st.sampled_from(keys)))
    elif kind == "garbage":
        src = (ROOT / "conf" / option).read_text()
        cut = draw(st.integers(0, len(src)))
        text = src[:cut] + draw(st.text(alphabet=":[]{}-#&*!|>'\"%@ \n\tab1", max_size=8)) + src[cut:]
    else:
        key = f"{option.parent}.{draw(st.sampled_from(keys + ['nope']))}"
        value = draw(st.one_of(st.text(alphabet="abc019.,[]{}=:'\" ~+-e", max_size=10), st.sampled_from(
            ["null", "[]", "[a,b]", "1e-4", "true", "???"])))
        prefix = draw(st.sampled_from(["", "+", "++", "~"]))
        overrides.append(f"{prefix}{key}={value}")
    if text is None:
        text = yaml.safe_dump(data, sort_keys=False)
    return option, text, overrides


def fuzzed(examples: int):
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def conf_with(tmp_path_factory, option: Path, data: bytes) -> Path:
    """A copy of the shipped conf/ with one option file replaced."""
    conf = tmp_path_factory.mktemp("conf")
    shutil.copytree(ROOT / "conf", conf, dirs_exist_ok=True)
    (conf / option).write_bytes(data)
    return conf


def assert_only_diagnostics(result) -> None:
    assert all(isinstance(d, Diagnostic) and d.location.line >= 1 for d in result.diagnostics)


@fuzzed(60)
@given(m=mutation())
def test_linter_never_raises(tmp_path_factory, m):
    option, text, overrides = m
    result = lint(overrides, conf_with(tmp_path_factory, option, text.encode()))
    assert_only_diagnostics(result)
    assert result.compositions == 1


@st.composite
def structure(draw) -> tuple[Path, bytes, str]:
    """An option file whose structure, not its values, is hostile: a scalar or list document, deep nesting,
    alias chains, a defaults list naming itself or another option that names it back, other encodings."""
    option = draw(st.sampled_from(OPTIONS))
    src = (ROOT / "conf" / option).read_text()
    kind = draw(st.sampled_from(["scalar", "list", "deep", "aliases", "self", "cycle", "encoding", "empty", "tabs"]))
    depth = draw(st.integers(1, 30_000))
    if kind == "scalar":
        text = draw(st.sampled_from(["42", "'text'", "null", "~", "true", "3.5", "!!binary aGk="]))
    elif kind == "list":
        text = yaml.safe_dump(draw(st.lists(scalars, max_size=4)))
    elif kind == "deep":
        text = draw(st.sampled_from(["[" * depth + "]" * depth, "{a: " * depth + "1" + "}" * depth,
                                     "".join(f"{' ' * i}k{i}:\n" for i in range(min(depth, 3000))) + "x"]))
    elif kind == "aliases":
        width = draw(st.integers(2, 12))
        lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, draw(
            st.integers(2, 25)))]
        text = "\n".join(lines) + "\n" + src
    elif kind == "self":
        text = f"defaults:\n  - {option.stem}\n  - _self_\n" + src.split("defaults:")[0]
    elif kind == "cycle":  # names the group's first option, which the test makes name this one back
        first = min(o for o in OPTIONS if o.parent == option.parent)
        text = f"defaults:\n  - {first.stem}\n  - _self_\n"
    elif kind == "empty":
        text = ""
    elif kind == "tabs":
        text = src.replace("  ", "\t", draw(st.integers(1, 3)))
    else:
        text = src
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])) if kind == "encoding" else "utf-8"
    tail = draw(st.sampled_from(["", " é", " \x00", " \x07", " \ufeff"])) if kind == "encoding" else ""
    data = (text + tail).encode(encoding, errors="replace")  # Latin-1 has no U+FEFF: a "?" there
    return option, data, kind


@fuzzed(40)
@given(s=structure())
def test_linter_never_raises_on_hostile_file_structure(tmp_path_factory, s):
    import time

    option, data, kind = s
    conf = conf_with(tmp_path_factory, option, data)
    if kind == "cycle":  # the first option of the group names the drawn one back
        first = min((conf / option.parent).glob("*.yaml"))
        first.write_text(f"defaults:\n  - {option.stem}\n  - _self_\n")
    started = time.perf_counter()
    result = lint([f"{option.parent}={option.stem}"], conf)
    assert time.perf_counter() - started < 10
    assert_only_diagnostics(result)
    if kind in ("scalar", "list", "self", "cycle") or (kind == "deep" and data.count(b"[") > 1000):
        assert result.has_errors, (kind, [d.message for d in result.diagnostics])
