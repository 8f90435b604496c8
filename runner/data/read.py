"""Read the rows: generated ``builtin:`` sets, local files through ``datasets`` (Arrow, memory-mapped,
cached by fingerprint), a hub id where the machine is online. Bad input gets the file:line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loracfg.runner.data.builtin import BUILTIN
from loracfg.runner.errors import RunError

EXTENSIONS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def _looks_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or Path(path).expanduser().exists() or "\\" in path


def read_rows(data: dict[str, Any], seed: int):
    """The data set's rows as a ``datasets.Dataset``."""
    import datasets

    datasets.disable_progress_bars()
    path = data["path"]
    if path.startswith("builtin:"):
        name = path.removeprefix("builtin:")
        if name not in BUILTIN:
            raise RunError(f"data.path '{path}' names no builtin data set; builtin sets: "
                           f"{', '.join('builtin:' + k for k in BUILTIN)}", key="data.path")
        return datasets.Dataset.from_list(BUILTIN[name](int(data["num_samples"]), seed))
    p = Path(path).expanduser()
    kind = EXTENSIONS.get(p.suffix.lower())
    if kind is None and not _looks_local(path):
        return _hub(path)
    if kind is None:
        raise RunError(f"data.path '{path}': its extension '{p.suffix}' gives no file type; use a .jsonl, .json, "
                       f".csv, .parquet or .txt file", key="data.path")
    if not p.is_file():
        raise RunError(f"data.path '{path}' does not exist (looked in {p.resolve().parent}); point data.path at a "
                       f"{' or '.join(e for e, k in EXTENSIONS.items() if k == kind)} file", key="data.path")
    try:
        ds = datasets.load_dataset(kind, data_files=str(p), split="train")
    except Exception as e:  # noqa: BLE001 - the reader's many error types; located below where possible
        bad = bad_json_line(p, data) if kind == "json" else None
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise RunError(bad or f"data.path '{path}' is not valid {kind}: {first}", key="data.path") from e
    if kind == "text" and data["dataset_text_field"] != "text":
        ds = ds.rename_column("text", data["dataset_text_field"])
    if len(ds) == 0:
        raise RunError(f"data.path '{path}' has no rows", key="data.path")
    return ds


def _hub(path: str):
    import datasets

    try:
        return datasets.load_dataset(path, split="train")
    except Exception as e:  # noqa: BLE001 - offline, no such data set, gated: one message
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise RunError(f"data.path '{path}' is not a local file and loading it from the hub failed: {first}. "
                       f"Point data.path at a local .jsonl/.json/.csv/.parquet/.txt file", key="data.path") from e


def bad_json_line(path: Path, data: dict[str, Any]) -> str | None:
    """``file:line: ...`` for the first line of a JSON-lines file that is not valid JSON, not an object, or not
    a row of data.format (which is how Arrow's 'cannot unify types' is explained: a list where text belongs)."""
    from loracfg.runner.data.formats import FORMATS
    from loracfg.runner.data.formats._base import BadRow

    if _is_array(path):
        try:
            json.loads(path.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError as e:
            return f"{path}:{e.lineno}: not valid JSON: {e.msg} (column {e.colno})"
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                return f"{path}:{n}: not valid JSON: {e.msg} (column {e.colno})"
            if not isinstance(value, dict):
                return f"{path}:{n}: a row must be a JSON object, not {type(value).__name__}"
            try:
                FORMATS[data["format"]].convert(value, data)
            except BadRow as e:
                return f"{path}:{n}: {e}"
    return None


def row_location(data: dict[str, Any], index: int) -> str:
    """Where row ``index`` (0-based, in file order) came from: file:line for line-based files."""
    path = data["path"]
    if path.startswith("builtin:"):
        return f"{path} row {index}"
    p = Path(path).expanduser()
    kind = EXTENSIONS.get(p.suffix.lower())
    if kind in ("json", "text") and p.is_file() and not (kind == "json" and _is_array(p)):
        seen = -1
        with open(p, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if line.strip() or kind == "text":
                    seen += 1
                if seen == index:
                    return f"{path}:{n}"
    if kind == "csv":
        return f"{path}:{index + 2}"  # after the header line (a row with quoted newlines moves it)
    return f"{path} row {index}"


def _is_array(p: Path) -> bool:
    with open(p, encoding="utf-8", errors="replace") as f:
        return f.read(1024).lstrip().startswith("[")
