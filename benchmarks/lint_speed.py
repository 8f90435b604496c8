"""Time `loracfg lint` against check-jsonschema, side by side in one run, and print the ratios.

Whole processes (what a pre-commit hook pays), each command run REPEATS times after one warm-up
run, interleaved so that machine noise hits all of them alike; medians are compared.

    python benchmarks/lint_speed.py [--repeats 15]

Targets (issue #3): `loracfg lint` of the default composition no slower than check-jsonschema
validating one conf file (ratio <= 1.0), and the whole conf/ under 2x that.

The size sweep (issue #13): a copy of conf/ with 20, 100, 200 and 400 option files in one group
(`lora/gen-NNN.yaml`, each r16 with its own rank), linted whole; the target is linear
growth at <= 20 ms per option file. check-jsonschema validating the same files is the peer.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
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
    parser.add_argument("--sweep", type=int, nargs="*", default=[20, 100, 200, 400],
                        help="option-file counts of the size sweep (none: skip it)")
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
    if args.sweep:
        sweep(args.sweep, max(1, args.repeats // 5))


def _generated_conf(where: Path, n: int) -> Path:
    """conf/ plus n lora options: r16 with its own rank each (whole files, so check-jsonschema can check them)."""
    conf = where / f"conf-{n}"
    shutil.copytree(ROOT / "conf", conf)
    base = (ROOT / "conf" / "lora" / "r16.yaml").read_text()
    for i in range(n):
        r = 8 + i % 57
        text = re.sub(r"(?m)^r: .*$", f"r: {r}", base)
        (conf / "lora" / f"gen-{i:03d}.yaml").write_text(re.sub(r"(?m)^lora_alpha: .*$", f"lora_alpha: {2 * r}", text))
    return conf


def sweep(sizes: list[int], repeats: int) -> None:
    print(f"\nsize sweep: `loracfg lint` of a conf/ with N generated lora options (n={repeats})")
    print(f"{'N':>5s} {'loracfg':>10s} {'per file':>10s} {'check-jsonschema':>17s} {'ratio':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            conf = _generated_conf(Path(tmp), n)
            files = sorted(str(p) for p in (conf / "lora").glob("gen-*.yaml"))
            times = time_commands({
                "loracfg": [_tool("loracfg"), "lint", "--config-dir", str(conf)],
                "check-jsonschema": [_tool("check-jsonschema"), "--schemafile", str(ROOT / "schemas/lora.schema.json"),
                                     *files]}, repeats, ROOT)
            med = medians(times)
            print(f"{n:5d} {med['loracfg'] * 1000:8.0f}ms {med['loracfg'] * 1000 / n:8.1f}ms "
                  f"{med['check-jsonschema'] * 1000:15.0f}ms {med['loracfg'] / med['check-jsonschema']:6.2f}")


if __name__ == "__main__":
    main()
