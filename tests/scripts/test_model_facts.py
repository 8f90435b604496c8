"""scripts/model_facts.py writes a model option from a config.json, and --refresh rewrites the facts of
existing options: both reproduce the shipped conf/model files exactly (architecture on the meta device)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "model_facts.py"
SHIPPED = ROOT / "conf" / "model" / "qwen2.5-0.5b.yaml"


def model_facts(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_new_option_from_config_json_is_the_shipped_one(tmp_path):
    option = yaml.safe_load(SHIPPED.read_text())
    # a config.json as the hub has it: the shipped keys plus ones no module shape depends on
    config = {**option["config"], "architectures": ["Qwen2ForCausalLM"], "torch_dtype": "bfloat16",
              "use_cache": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    r = model_facts("config.json", "--name", "qwen2.5-0.5b", "--name-or-path", "Qwen/Qwen2.5-0.5B", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == SHIPPED.read_text()
    assert "not kept" in r.stderr and "architectures" in r.stderr and "torch_dtype" in r.stderr


def test_refresh_rewrites_stale_facts_and_leaves_current_ones(tmp_path):
    stale = tmp_path / "qwen2.5-0.5b.yaml"
    current = tmp_path / "tiny-llama.yaml"
    # facts that no longer match the architecture: a layer count edited in config: and not regenerated
    stale.write_text(SHIPPED.read_text().replace("count: 24", "count: 20"))
    current.write_text((ROOT / "conf" / "model" / "tiny-llama.yaml").read_text())
    r = model_facts("--refresh", str(stale), str(current), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{stale}: updated" in r.stderr and f"{current}: unchanged" in r.stderr
    assert stale.read_text() == SHIPPED.read_text()
    assert current.read_text() == (ROOT / "conf" / "model" / "tiny-llama.yaml").read_text()
