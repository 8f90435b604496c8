"""
## What it does
Checks a hardware option's `compute_capability` and `supports_bf16` against the known facts of
the GPU its `device_name` names (one table, `DEVICES`), and `supports_bf16: true` below compute
capability 8.0 (bfloat16 arithmetic arrived with Ampere).

## Why is this bad?
loracfg decides precision (`bf16: auto`), attention and the optimizer from these facts. A T4
declared with bf16 gets bf16 training that transformers refuses on the node ("Your setup doesn't
support bf16/gpu"), after the job waited in the queue; a wrong compute capability passes or
fails the attention checks for the wrong device.

## Example
```yaml
device_name: "Tesla T4"
supports_bf16: true
compute_capability: "8.0"
```

## Use instead
```yaml
device_name: "Tesla T4"
supports_bf16: false
compute_capability: "7.5"
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L030"
NAME = "hardware-facts-contradict-device"
SEVERITY = Severity.WARNING

# A word of the device name (lower case) -> (compute capability, bfloat16 support): NVIDIA's published figures.
DEVICES: dict[str, tuple[str, bool]] = {
    "t4": ("7.5", False), "v100": ("7.0", False), "p100": ("6.0", False), "a10g": ("8.6", True),
    "a10": ("8.6", True), "a40": ("8.6", True), "l4": ("8.9", True), "l40s": ("8.9", True), "a100": ("8.0", True),
    "h100": ("9.0", True), "h200": ("9.0", True), "4090": ("8.9", True), "3090": ("8.6", True), "b200": ("10.0", True),
}


def known(device_name: str) -> tuple[str, tuple[str, bool]] | None:
    words = device_name.lower().replace("-", " ").split()
    return next(((w, DEVICES[w]) for w in words if w in DEVICES), None)


def capability(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check(ctx: LintContext):
    if ctx.get("hardware.accelerator") != "cuda":
        return
    name, cc, bf16 = ctx.get("hardware.device_name") or "", ctx.get("hardware.compute_capability"), \
        ctx.get("hardware.supports_bf16")
    facts = known(name)
    if facts:
        word, (true_cc, true_bf16) = facts
        if cc is not None and cc != true_cc:
            yield Finding("hardware.compute_capability", f"a {word.upper()} ('{name}') has compute capability "
                                                         f"{true_cc}, not {cc}", f"hardware.compute_capability='{true_cc}'")
        if bf16 != true_bf16:
            yield Finding("hardware.supports_bf16", f"a {word.upper()} ('{name}') "
                                                    f"{'computes' if true_bf16 else 'does not compute'} in bfloat16",
                          f"hardware.supports_bf16={str(true_bf16).lower()}")
    elif bf16 and capability(cc) is not None and capability(cc) < 8.0:
        yield Finding("hardware.supports_bf16", f"compute capability {cc} has no bfloat16 (Ampere, 8.0, and later)",
                      "hardware.supports_bf16=false")
