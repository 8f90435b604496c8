"""Config files that would hang or crash the YAML loader, or that Hydra cannot load, found before Hydra
reads them (a traceback or a message at the wrong file otherwise).

Pre-commit runs ``loracfg lint`` on untrusted pull requests. PyYAML shares aliased nodes, but
OmegaConf expands them: a 342-byte "billion laughs" file (nine anchors of nine aliases each) made
lint run for minutes. Every file of the config dir is checked once per Composer: larger than
``MAX_BYTES``, nested deeper than ``MAX_DEPTH`` (the loaders recurse once per level and would run out
of stack, at a depth that depends on the caller's), holding or expanding to more than
``MAX_NODES`` nodes, not UTF-8, or a document that is not a mapping (``42``, a list) is a C001 naming
the file and line; nothing is composed until it is fixed.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MAX_BYTES = 1_000_000
# Values once aliases are expanded: OmegaConf and the schema take about 0.4 ms per value on 2 cores, so this
# bounds one lint to seconds; the largest shipped option file holds about 60.
MAX_NODES = 10_000
MAX_DEPTH = 100  # levels of mappings and lists; the deepest shipped option file has 3
FAST_BYTES = 10_000  # a smaller file cannot hold MAX_NODES values (each takes two bytes at least)


def _shape(text: str) -> tuple[int, int, str] | None:
    """(line, col, what is wrong) where the nesting first passes MAX_DEPTH or the values pass MAX_NODES, from the
    parser's events: PyYAML's parser keeps its own stack, so this never recurses, and it stops at the first excess."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            continue
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return event.start_mark.line + 1, event.start_mark.column + 1, (
                    f"the YAML is nested more than {MAX_DEPTH} levels deep; the loader recurses once per level "
                    f"and would run out of stack: flatten it")
        if isinstance(event, (yaml.CollectionStartEvent, yaml.ScalarEvent)):
            nodes += 1
            if nodes > MAX_NODES:
                return event.start_mark.line + 1, event.start_mark.column + 1, (
                    f"the file holds more than {MAX_NODES:,} values; a config file is not a data file "
                    f"(name the data in data.path instead)")
    return None


def _expanded(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes in the document once every alias is expanded (shared nodes counted once per use)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a node that contains itself (recursive alias) counts once
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded(k, memo) + _expanded(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[id(node)] = total
    return total


# What PyYAML's reader refuses (YAML 1.1's printable set): C0 controls but tab, LF, CR; DEL, C1 but NEL; surrogates
_NONPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


def check(path: Path) -> tuple[int, int, str] | None:
    """(line, col, what is wrong) for a file the loader must not read, else None."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size > MAX_BYTES:
        return 1, 1, f"the file is {size:,} bytes; a config file may be at most {MAX_BYTES:,}"
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError:
        return None  # reported where it is read
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        return line, col, f"the file is not UTF-8 (byte 0x{raw[e.start]:02x}); save it as UTF-8"
    bad = _NONPRINTABLE.search(text)
    if bad:  # PyYAML's reader refuses these with a ReaderError that names no file
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        return line, col, f"the file has a control character (U+{ord(bad.group()):04X}) YAML does not allow; remove it"
    keyed = re.search(r"(?m)^[^\s#\-\[{][^\n]*:", text)  # a top-level 'key:' line: a mapping, as it must be
    indent = max(map(len, re.findall(r"(?m)^[ \t]+", text)), default=0)  # block nesting needs indentation
    if keyed and "&" not in text and len(text) < FAST_BYTES and indent < MAX_DEPTH // 2 and (
            text.count("[") + text.count("{") + text.count("- ") < MAX_DEPTH // 2):
        return None  # small, no anchors and too little nesting to pass MAX_DEPTH: nothing to expand or recurse on
    try:
        shape = _shape(text)
        node = None if shape else yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None  # malformed YAML is reported by the compose (C001) with its own mark
    if shape:
        return shape
    if node is None:
        return None
    if not isinstance(node, yaml.MappingNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else f"the scalar {node.value!r}"
        return node.start_mark.line + 1, node.start_mark.column + 1, (
            f"the file holds {kind}, not a mapping of config keys")
    memo: dict[int, int] = {}
    count = _expanded(node, memo)
    if count > MAX_NODES:
        # the top-level value that expands the most is where the bomb goes off
        values = [v for _, v in node.value] if isinstance(node, yaml.MappingNode) else [node]
        mark = max(values, key=lambda v: memo.get(id(v), 0)).start_mark
        return mark.line + 1, mark.column + 1, (f"its aliases expand to {count:,} nodes (at most {MAX_NODES:,}): "
                                                f"a YAML alias bomb; write the values out or use fewer aliases")
    return None

