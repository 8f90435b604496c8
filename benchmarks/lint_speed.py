"""Time `loracfg lint` against check-jsonschema, side by side in one run, and print the ratios.

Whole processes (what a pre-commit hook pays), each command run REPEATS times after one warm-up
run, interleaved so that machine noise hits all of them alike; medians are compared.

    python benchmarks/lint_speed.py [--repeats 15]

Targets (issue #3): `loracfg lint` of the default composition no slower than check-jsonschema
validating one conf file (ratio <= 1.0), and the whole conf/ under 2x that.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import medians, time_commands  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    exe = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if exe is None:
        sys.exit(f"{name} is not installed; pip install -e '.[test]'")
    return exe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    commands = {
        "check-jsonschema, one file (conf/lora/r16.yaml)":
            [_tool("check-jsonschema"), "--schemafile", "schemas/lora.schema.json", "conf/lora/r16.yaml"],
        "loracfg lint, default composition (conf/config.yaml)": [_tool("loracfg"), "lint", "conf/config.yaml"],
        "loracfg lint, whole conf/ (every option composed)": [_tool("loracfg"), "lint"],
    }
    times = time_commands(commands, args.repeats, ROOT)
    med = medians(times)
    peer, one, whole = med.values()
    print(f"{'command':55s} {'median':>8s} {'min':>8s} {'max':>8s}   (n={args.repeats})")
    for name, v in times.items():
        print(f"{name:55s} {med[name] * 1000:7.0f}ms {min(v) * 1000:7.0f}ms {max(v) * 1000:7.0f}ms")
    print(f"\nratio default composition / check-jsonschema one file: {one / peer:.2f}   (target <= 1.0)")
    print(f"ratio whole conf/          / check-jsonschema one file: {whole / peer:.2f}   (target <  2.0)")


if __name__ == "__main__":
    main()
