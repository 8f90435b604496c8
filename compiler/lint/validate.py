"""Stage 2: validate a composed config against the JSON schemas in ``schemas/``.

One schema per config group plus ``config.schema.json`` for the whole run, which refers to
the group schemas by file name through a ``referencing`` registry. The validator is built
once per process.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from loracfg.compiler.lint import codes
from loracfg.compiler.lint.compose import Composition, close_matches
from loracfg.compiler.lint.diagnostics import Diagnostic
from loracfg.compiler.lint.yamlpos import join
from loracfg.compiler.resources import schemas_dir
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT_SCHEMA = "config.schema.json"


@cache
def schema_documents() -> dict[str, dict]:
    """Every shipped schema, by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(schemas_dir().glob("*.schema.json"))}


@cache
def registry() -> Registry:
    return Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=DRAFT202012)) for name, doc in schema_documents().items()
    )


@cache
def validator(name: str = ROOT_SCHEMA) -> Draft202012Validator:
    return Draft202012Validator(schema_documents()[name], registry=registry())


def group_schema(group: str) -> dict:
    return schema_documents()[f"{group}.schema.json"]


def apply_defaults(comp: Composition) -> None:
    """A key a group's option leaves out takes the library's default, where the schema gives one (``default``,
    whose it is in ``x-default-source``): a user's option file lists only what it changes. Recorded in
    ``comp.defaulted``; a key whose deprecated name is set is left to L017."""
    for group, node in comp.config.items():
        if not isinstance(node, dict) or f"{group}.schema.json" not in schema_documents():
            continue
        props = group_schema(group).get("properties", {})
        renamed = {p.get("x-renamed-to") for name, p in props.items() if name in node}
        for key, prop in props.items():
            if "default" in prop and key not in node and key not in renamed:
                node[key] = copy.deepcopy(prop["default"])
                comp.defaulted[f"{group}.{key}"] = prop.get("x-default-source", "the schema")


def validate(comp: Composition) -> list[Diagnostic]:
    apply_defaults(comp)
    diags: list[Diagnostic] = []
    for error in sorted(validator().iter_errors(comp.config), key=lambda e: list(map(str, e.absolute_path))):
        diags.extend(_diagnostics(error, comp))
    for group in sorted(k for k in comp.config if isinstance(comp.config[k], dict)):
        if f"{group}.schema.json" in schema_documents():
            diags.extend(_fractional_counts(comp, comp.config[group], group_schema(group), group))
    if not diags and isinstance(comp.config.get("schedule"), dict) and isinstance(comp.config.get("hardware"), dict):
        from loracfg.compiler.lint import auto_batch

        diags.extend(auto_batch.resolve(comp))  # per_device_train_batch_size: auto becomes a number here
    return diags


def _fractional_counts(comp: Composition, value: Any, schema: dict, key: str) -> Iterable[Diagnostic]:
    """Counts written with a fraction (``8.0``). JSON Schema counts 8.0 as an integer, so the schema passes it,
    but the plan would carry a float into torch and peft, which refuse it (DataLoader: 'batch_size should be
    a positive integer value'; nn.Linear with r=16.0)."""
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value and isinstance(sub, dict):
                yield from _fractional_counts(comp, value[name], sub, join(key, name))
        return
    types = schema.get("type")
    if isinstance(value, float) and value.is_integer() and (types == "integer" or (isinstance(types, list) and
                                                                                 "integer" in types)):
        yield Diagnostic(codes.WRONG_TYPE.code, codes.WRONG_TYPE.severity,
                         f"'{key}' must be an integer, got {value}: a count written with a fraction reaches torch "
                         f"as a float, which it refuses", key, comp.locate(key), f"{key}={int(value)}",
                         comp.overrides)


def _key(path: Iterable[Any]) -> str:
    key = ""
    for part in path:
        key = join(key, part)
    return key


def _json(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}


def expected(schema: dict) -> str:
    """What a schema accepts, in words: 'an integer', "one of 'nf4', 'fp4'", 'true, false or "auto"'."""
    if "enum" in schema:
        return "one of " + ", ".join(_json(v) for v in schema["enum"])
    if "const" in schema:
        return _json(schema["const"])
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " or ".join(expected(s) for s in schema[combinator])
    t = schema.get("type")
    if isinstance(t, list):
        return " or ".join(_TYPE_NAMES.get(x, x) for x in t)
    if t:
        return _TYPE_NAMES.get(t, t)
    return "a valid value"


def _diagnostics(error: ValidationError, comp: Composition) -> Iterable[Diagnostic]:
    key = _key(error.absolute_path)
    shown = key or "the config"
    kw = error.validator
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None

    def diag(code: codes.Code, message: str, at: str = key, fix: str | None = None) -> Diagnostic:
        return Diagnostic(code.code, code.severity, message, at or None, comp.locate(at), fix, comp.overrides)

    if kw in ("additionalProperties", "unevaluatedProperties"):
        known = sorted(error.schema.get("properties", {}))
        renamed = error.schema.get("x-renamed", {})
        instead = error.schema.get("x-instead", {})
        for name in sorted(set(error.instance) - set(known)):
            unknown = join(key, name)
            if name in instead:  # a peer's key that this schema spells another way
                yield diag(codes.UNKNOWN_KEY, f"'{unknown}': {instead[name]['message']}", unknown,
                           instead[name]["fix"])
                continue
            if name in renamed:  # an old name, kept as a diagnostic for one release
                new = join(key, renamed[name])
                yield diag(codes.UNKNOWN_KEY,
                           f"'{unknown}' was renamed to '{new}' (the name TRL's SFTConfig uses); rename the key",
                           unknown, f"rename '{name}' to '{renamed[name]}'")
                continue
            close = close_matches(name, known)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            listing = f" Known keys of '{shown}': {', '.join(known)}." if known else ""
            fix = f"rename '{name}' to '{close[0]}'" if close else f"remove '{name}'"
            yield diag(codes.UNKNOWN_KEY, f"unknown key '{unknown}'{hint}.{listing}", unknown, fix)
        return
    if kw == "required":
        for name in error.validator_value:
            if name not in error.instance:
                missing = join(key, name)
                doc = custom or error.schema.get("properties", {}).get(name, {}).get("description")
                yield diag(codes.MISSING_KEY, f"'{missing}' is required and missing" + (f": {doc}" if doc else ""),
                           key, f"+{missing}=VALUE")
        return
    value = _json(error.instance)
    if kw == "not":
        yield diag(codes.INVALID_VALUE, f"'{shown}': {custom or error.message}")
    elif kw == "type":
        yield diag(codes.WRONG_TYPE, f"'{shown}' must be {expected(error.schema)}, got {value} "
                                     f"({type(error.instance).__name__})")
    elif kw == "enum" and str(error.instance) in error.schema.get("x-old-values", {}):
        now = error.schema["x-old-values"][str(error.instance)]
        shapes = ", ".join(map(_json, error.schema["enum"]))
        yield diag(codes.INVALID_VALUE, f"'{shown}' no longer takes {value}: it names the shape of the rows now "
                                        f"({shapes}); the file type comes from the path. For what {value} meant, "
                                        f"'{now}'", fix=f"{key}={now}")
    elif kw == "enum" and str(error.instance) in error.schema.get("x-removed-values", {}):
        why = error.schema["x-removed-values"][str(error.instance)]
        shapes = ", ".join(map(_json, error.schema["enum"]))
        yield diag(codes.INVALID_VALUE, f"'{shown}' no longer takes {value}: {why}. It takes {shapes}",
                   fix=f"{key}={error.schema['enum'][0]}")
    elif kw in ("enum", "const", "oneOf", "anyOf"):
        allowed = error.schema.get("enum") or []
        close = suggest(str(error.instance), [str(a) for a in allowed])
        hint = f"; did you mean {close[0]!r}?" if close else ""
        fix = f"{key}={close[0]}" if close else None
        code = codes.WRONG_TYPE if kw in ("oneOf", "anyOf") and _type_mismatch(error) else codes.INVALID_VALUE
        yield diag(code, f"'{shown}' must be {expected(error.schema)}, got {value}{hint}", fix=fix)
    elif kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kw]
        yield diag(codes.INVALID_VALUE, f"'{shown}' must be {op} {error.validator_value}, got {value}")
    else:
        yield diag(codes.INVALID_VALUE, f"'{shown}': {error.message}")


def suggest(value: str, allowed: list[str]) -> list[str]:
    """The allowed value the user most likely meant: the shortest that starts with it, else the closest."""
    prefixed = sorted((a for a in allowed if a.startswith(value)), key=len)
    return prefixed[:1] or close_matches(value, allowed, n=1)


def _type_mismatch(error: ValidationError) -> bool:
    return all(sub.validator == "type" for sub in error.context or []) and bool(error.context)
