"""schemas/: one Draft 2020-12 schema per run group, 1:1 with conf/, documenting every field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from loracfg.compiler.lint.compose import GROUPS
from loracfg.compiler.lint.validate import registry, schema_documents, validator

ROOT = Path(__file__).resolve().parents[3]
CONF, SCHEMAS = ROOT / "conf", ROOT / "schemas"
OPTION_FILES = sorted(p for g in GROUPS for p in (CONF / g).glob("*.yaml"))
# Hydra's own groups (launchers, sweepers) and sweep/ (``@package _global_`` files that set only hydra.mode and
# hydra.sweeper.params) configure Hydra, not the run: not ours to schema
HYDRA_OWN = {"hydra", "sweep"}


def _properties(schema: dict, where: str):
    for name, prop in schema.get("properties", {}).items():
        yield f"{where}.{name}", prop
        yield from _properties(prop, f"{where}.{name}")


def test_one_schema_per_group_folder():
    groups = {p.name for p in CONF.iterdir() if p.is_dir()} - HYDRA_OWN
    schemas = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert groups == set(GROUPS)
    assert schemas == groups | {"config", "primary"}


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMAS.glob("*.schema.json")))
def test_schema_is_valid_draft_2020_12_and_documents_every_field(name):
    doc = json.loads((SCHEMAS / name).read_text())
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(doc)
    assert doc.get("description")
    for where, prop in _properties(doc, name):
        assert prop.get("description") or "$ref" in prop, f"{where} has no description"


def test_group_schemas_reject_unknown_keys():
    for g in GROUPS:
        assert schema_documents()[f"{g}.schema.json"]["additionalProperties"] is False


def test_root_schema_reaches_groups_through_the_registry():
    root = schema_documents()["config.schema.json"]
    assert {root["properties"][g]["$ref"] for g in GROUPS} == {f"{g}.schema.json" for g in GROUPS}
    assert all(f"{g}.schema.json" in registry() for g in GROUPS)
    errors = list(validator().iter_errors({g: {} for g in GROUPS} | {"seed": 1, "output_dir": "o"}))
    assert any(e.validator == "required" and list(e.absolute_path) == ["lora"] for e in errors)


def test_validator_is_built_once():
    assert validator() is validator()


@pytest.mark.parametrize("path", OPTION_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_option_file_is_schema_valid(path):
    data = yaml.safe_load(path.read_text())
    errors = list(Draft202012Validator(schema_documents()[f"{path.parent.name}.schema.json"]).iter_errors(data))
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize("path", [*OPTION_FILES, CONF / "config.yaml"], ids=lambda p: p.name)
def test_every_conf_file_has_a_header_and_a_modeline_to_its_schema(path):
    lines = path.read_text().splitlines()
    m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", lines[0])
    assert m, f"{path}: first line must be the yaml-language-server modeline"
    target = (path.parent / m.group(1)).resolve()
    expected = "primary" if path.name == "config.yaml" else path.parent.name
    assert target == SCHEMAS / f"{expected}.schema.json"
    assert lines[1].startswith("# ") and len(lines[1]) > 10, "second line: what the file is"
    assert any("train.py" in line or "loracfg" in line for line in lines[1:4]), "header names the command"


def test_primary_config_file_is_valid_against_its_schema():
    data = yaml.safe_load((CONF / "config.yaml").read_text())
    assert list(validator("primary.schema.json").iter_errors(data)) == []
