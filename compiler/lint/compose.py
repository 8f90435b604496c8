"""Stage 1: compose a run with Hydra, and remember where every value came from.

Hydra merges the option files of the defaults list and the command-line overrides but
forgets which file and line each value came from. We ask Hydra for the defaults list it
used (same search path, same overrides, same merge order) and index each of those files'
keys by line and column, so later stages can point at the line that set a value.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.initialize import get_gh_backup, restore_gh_from_backup
from hydra.types import RunMode
from loracfg.compiler.lint import (
    codes,
    env_values,  # noqa: F401 - registers the oc.env resolver that remembers what it read
    hostile,
)
from loracfg.compiler.lint.diagnostics import (
    COMMAND_LINE,
    Diagnostic,
    Location,
    display_path,
)
from loracfg.compiler.lint.yamlpos import join, positions, value_at
from loracfg.compiler.resources import shipped_conf_dir
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

# The config groups of a run; each has a JSON schema in schemas/GROUP.schema.json.
GROUPS = ("model", "quant", "lora", "schedule", "hardware", "data")
PRIMARY = "config"


_VARIANTS = "_loracfg_variants"
# Options per batched Hydra compose: Hydra's defaults-list work grows with the square of the overrides of one
# compose (each added child rebuilds the interpolation map of all of them), so batches stay this small.
_BATCH = 40
# RecursionError: Hydra recurses without end on defaults lists that name each other (or themselves)
_COMPOSE_ERRORS = (yaml.MarkedYAMLError, HydraException, OmegaConfBaseException, ValueError, RecursionError)


def _has_package_header(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        return any("@package" in line for _, line in zip(range(20), f) if line.lstrip().startswith("#"))


def parent_key(key: str) -> str:
    """``a.b[2]`` -> ``a.b``; ``a.b`` -> ``a``; ``a`` -> ``''``."""
    m = re.match(r"^(.*)(\.[^.\[\]]+|\[\d+\])$", key)
    return m.group(1) if m else ""


class Composition:
    """A composed run: plain resolved values plus where each came from.

    Where each value came from is worked out on first use (most compositions are clean and
    never need it), so it must be asked for while the Composer that made it is still open.
    """

    def __init__(self, overrides: tuple[str, ...], config: dict[str, Any], choices: dict[str, str],
                 provenance: Callable[[], tuple[dict[str, Location], Location]],
                 command_line_keys: frozenset[str] = frozenset()):
        self.overrides = overrides
        self.command_line_keys = command_line_keys
        self.config = config
        self.choices = choices
        self._provenance = provenance
        self._origins: dict[str, Location] | None = None
        self._primary: Location | None = None
        self.launcher: str | None = None  # Hydra's hydra/launcher choice (basic, slurm, ...) where known
        # (argument, value, why) of what lint resolved for the plan (loracfg.compiler.lint.auto_batch)
        self.batch_decisions: list[tuple[str, Any, str]] = []
        self.defaulted: dict[str, str] = {}  # key -> whose default it took (loracfg.compiler.lint.validate.apply_defaults)

    @property
    def origins(self) -> dict[str, Location]:
        if self._origins is None:
            self._origins, self._primary = self._provenance()
        return self._origins

    @property
    def primary(self) -> Location:
        self.origins  # noqa: B018 - computes both
        assert self._primary is not None
        return self._primary

    def locate(self, key: str) -> Location:
        k = key
        while k:
            if k in self.origins:
                return self.origins[k]
            k = parent_key(k)
        return self.primary

    def from_command_line(self, key: str) -> bool:
        """Whether a command-line override set ``key`` (or a key above it); needs no provenance."""
        k = key
        while k:
            if k in self.command_line_keys:
                return True
            k = parent_key(k)
        return False

    def get(self, key: str, default: Any = None) -> Any:
        return value_at(self.config, key, default)


def _diag(code: codes.Code, message: str, location: Location, key: str | None = None,
          fix: str | None = None, composition: Sequence[str] = ()) -> Diagnostic:
    return Diagnostic(code.code, code.severity, message, key, location, fix, tuple(composition))


def _first_line(text: str) -> str:
    return next((line for line in str(text).splitlines() if line.strip()), str(text)).strip()


def close_matches(word: str, candidates: Sequence[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)


def _gpus(accelerator: str, num_devices: int) -> int:
    return int(num_devices) if accelerator == "cuda" else 0


# conf/hydra/launcher/slurm.yaml asks SLURM for ${loracfg_gpus:${hardware.accelerator},${hardware.num_devices}}
OmegaConf.register_new_resolver("loracfg_gpus", _gpus, replace=True)


def register_search_path_plugin() -> None:
    """Register our SearchPathPlugin by hand as well: Hydra finds plugins by scanning the
    ``hydra_plugins`` namespace package, which setuptools' editable installs hide from that scan."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.loracfg_searchpath import LoracfgSearchPathPlugin

    Plugins.instance().register(LoracfgSearchPathPlugin)


class Composer:
    """Composes runs from a config directory, with loracfg's shipped groups on Hydra's search path.

    Use as a context manager: Hydra is initialised once and each ``compose()`` reuses it.
    """

    def __init__(self, config_dir: str | Path | None = None):
        self.config_dir = Path(config_dir).resolve() if config_dir else shipped_conf_dir()
        dirs = [self.config_dir, shipped_conf_dir()]
        self.search_dirs = [d for i, d in enumerate(dirs) if d not in dirs[:i]]
        self._parser = OverridesParser.create()
        self._ctx: Any = None

    def __enter__(self) -> "Composer":
        if not self.config_dir.is_dir():
            raise NotADirectoryError(f"config directory '{self.config_dir}' does not exist")
        register_search_path_plugin()
        # Inside a running Hydra app (train.py) GlobalHydra is taken: keep it and give it back on exit.
        self._backup = get_gh_backup()
        GlobalHydra.instance().clear()
        self._ctx = initialize_config_dir(config_dir=str(self.config_dir), version_base="1.3", job_name="loracfg")
        self._ctx.__enter__()
        return self

    @cached_property
    def _hostile(self) -> list[Diagnostic]:
        """C001 for each file of the config dir that would hang or crash the YAML loader (loracfg.compiler.lint.hostile);
        checked on the first compose, so ``adopt`` (train.py: Hydra has read the files already) never pays."""
        found = []
        for path in sorted(self.config_dir.rglob("*.y*ml")):
            bad = hostile.check(path)
            if bad:
                line, col, what = bad
                found.append(_diag(codes.MALFORMED_YAML, f"not loaded: {what}", Location.in_file(path, line, col)))
        return found

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)
        restore_gh_from_backup(self._backup)

    # -- the search path, as files -------------------------------------------------------
    def find_file(self, config_path: str) -> Path | None:
        for d in self.search_dirs:
            p = d / f"{config_path}.yaml"
            if p.is_file():
                return p
        return None

    def is_group(self, group: str) -> bool:
        return any((d / group).is_dir() for d in self.search_dirs)

    def options(self, group: str, *, own_only: bool = False) -> list[str]:
        dirs = [self.config_dir] if own_only else self.search_dirs
        return sorted({p.stem for d in dirs if (d / group).is_dir() for p in (d / group).glob("*.yaml")})

    # -- composing -----------------------------------------------------------------------
    def compose(self, overrides: Sequence[str] = ()) -> tuple[Composition | None, list[Diagnostic]]:
        overrides = tuple(overrides)
        if self._hostile:  # Hydra would read these files: nothing is composed until they are fixed
            return None, [dataclasses.replace(d, composition=overrides) for d in self._hostile]
        cols = self._columns(overrides)
        parsed: list[tuple[Override, int]] = []
        diags: list[Diagnostic] = []
        for text, col in zip(overrides, cols):
            try:
                parsed.append((self._parser.parse_override(text), col))
            except (OverrideParseException, HydraException) as e:
                diags.append(_diag(codes.INVALID_OVERRIDE, f"cannot parse override '{text}': {_first_line(e)}",
                                   Location(COMMAND_LINE, 1, col), composition=overrides))
        if diags:
            return None, diags
        diags = self._check_group_choices(parsed, overrides)
        if diags:
            return None, diags
        try:
            cfg = hydra_compose(PRIMARY, overrides=list(overrides), return_hydra_config=True)
        except _COMPOSE_ERRORS as e:
            return None, [self._compose_error(e, parsed, overrides)]
        choices = {g: str(o) for g, o in cfg.hydra.runtime.choices.items() if not g.startswith("hydra/") and o is not None}
        launcher = cfg.hydra.runtime.choices.get("hydra/launcher")
        with open_dict(cfg):
            del cfg["hydra"]
        return self._finish(cfg, overrides, parsed, choices, launcher)

    def adopt(self, cfg: DictConfig, overrides: Sequence[str], choices: dict[str, str]) -> tuple[Composition, list[Diagnostic]]:
        """The composition a Hydra app already composed (``train.py``: its ``cfg`` and
        ``HydraConfig.get().runtime.choices``), taken as it is rather than composed a second time."""
        overrides = tuple(overrides)
        parsed = [(self._parser.parse_override(text), col) for text, col in zip(overrides, self._columns(overrides))]
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]) if "hydra" in cfg else cfg
        own = {g: str(o) for g, o in choices.items() if not g.startswith("hydra/") and o is not None}
        return self._finish(cfg, overrides, parsed, own, choices.get("hydra/launcher"))

    def _finish(self, cfg: DictConfig, overrides: tuple[str, ...], parsed: list[tuple[Override, int]],
                choices: dict[str, str], launcher: str | None = None) -> tuple[Composition, list[Diagnostic]]:
        def provenance() -> tuple[dict[str, Location], Location]:
            defaults = GlobalHydra.instance().config_loader().compute_defaults_list(
                PRIMARY, list(overrides), RunMode.RUN)
            return self._origins(defaults.defaults, parsed)

        diags: list[Diagnostic] = []
        cli_keys = frozenset(ov.key_or_group for ov, _ in parsed if not self._is_group_override(ov) and not ov.is_delete())
        comp = Composition(overrides, {}, choices, provenance, cli_keys)
        comp.launcher = launcher
        comp.config = self._resolve(cfg, "", comp, diags)
        return comp, diags

    def _compose_error(self, e: Exception, parsed: list[tuple[Override, int]], overrides: tuple[str, ...]) -> Diagnostic:
        if isinstance(e, yaml.MarkedYAMLError):
            return self._yaml_error(e, overrides)
        if isinstance(e, RecursionError):
            return self._defaults_cycle(overrides)
        if isinstance(e, MissingConfigException):
            return self._missing_config(e, parsed, overrides)
        if isinstance(e, ConfigCompositionException):
            return self._composition_error(e, parsed, overrides)
        return _diag(codes.COMPOSITION_FAILED, f"Hydra could not compose the config: {_first_line(e)}",
                     self._primary_location(), composition=overrides)

    def compose_each_option(self, options: Sequence[tuple[str, str]], base: Composition | None
                            ) -> list[tuple[tuple[str, ...], Composition | None, list[Diagnostic]]]:
        """The default composition with each ``(group, option)`` chosen in turn: ``group=option`` for each.

        Composing each with Hydra costs about 45 ms, mostly Hydra loading its own configs again.
        Instead one Hydra compose loads every option file into a package of its own
        (``+lora@_loracfg_variants.v3=r64``: Hydra's own loading, merging and nested defaults),
        and each variant is the default with that group's node replaced by it. That is exactly
        what composing ``group=option`` does unless something else writes into the group's
        package: a ``# @package`` header, or the primary config's own keys. Those options, and
        all of them if the batched compose fails, are composed one by one instead.
        ``base`` is the default composition (None where it failed); its choices are the variants'.
        """
        if self._hostile:
            return [((f"{g}={o}",), *self.compose([f"{g}={o}"])) for g, o in options]
        results: dict[int, tuple[tuple[str, ...], Composition | None, list[Diagnostic]]] = {}
        batch = [] if base is None or self._primary_writes_groups() else \
            [i for i, (g, o) in enumerate(options) if self._plain_option(g, o)]
        for start in range(0, len(batch), _BATCH):
            chunk = batch[start:start + _BATCH]
            extra = [f"+{options[i][0]}@{_VARIANTS}.v{i}={options[i][1]}" for i in chunk]
            try:
                cfg = hydra_compose(PRIMARY, overrides=extra)
            except _COMPOSE_ERRORS:
                continue  # composed one by one below
            else:
                with open_dict(cfg):
                    variants = cfg.pop(_VARIANTS)
                    for i in chunk:
                        group, option = options[i]
                        overrides = (f"{group}={option}",)
                        default_node = cfg[group]
                        cfg[group] = variants[f"v{i}"]
                        parsed = [(self._parser.parse_override(overrides[0]), 1)]
                        comp, diags = self._finish(cfg, overrides, parsed, {**base.choices, group: option})
                        cfg[group] = default_node
                        results[i] = (overrides, comp, diags)
        for i, (group, option) in enumerate(options):
            if i not in results:
                overrides = (f"{group}={option}",)
                results[i] = (overrides, *self.compose(overrides))
        return [results[i] for i in range(len(options))]

    def _plain_option(self, group: str, option: str) -> bool:
        path = self.find_file(f"{group}/{option}")
        return path is not None and not _has_package_header(path)

    def _primary_writes_groups(self) -> bool:
        path = self.find_file(PRIMARY)
        if path is None:
            return False
        try:
            return any(k in GROUPS for k in positions(path))
        except yaml.YAMLError:
            return True

    @staticmethod
    def _columns(overrides: Sequence[str]) -> list[int]:
        cols, pos = [], 1
        for text in overrides:
            cols.append(pos)
            pos += len(text) + 1
        return cols

    def _is_group_override(self, ov: Override) -> bool:
        return ov.type in (OverrideType.CHANGE, OverrideType.ADD, OverrideType.FORCE_ADD) \
            and self.is_group(ov.key_or_group) and not ov.is_sweep_override()

    def _check_group_choices(self, parsed: list[tuple[Override, int]], overrides: tuple[str, ...]) -> list[Diagnostic]:
        diags = []
        for ov, col in parsed:
            if not self._is_group_override(ov):
                continue
            value = ov.value()
            if not isinstance(value, str) or self.find_file(f"{ov.key_or_group}/{value}"):
                continue
            diags.append(self._unknown_option(ov.key_or_group, str(value), Location(COMMAND_LINE, 1, col), overrides))
        return diags

    def _unknown_option(self, group: str, option: str, loc: Location, overrides: Sequence[str]) -> Diagnostic:
        available = self.options(group)
        close = close_matches(option, available, n=1)
        fix = f"{group}={close[0]}" if close else None
        listing = ", ".join(available) if available else "(none)"
        return _diag(codes.MISSING_OPTION,
                     f"no option '{option}' in config group '{group}'. Available options in '{group}': {listing}",
                     loc, key=group, fix=fix, composition=overrides)

    def _defaults_edges(self) -> dict[tuple[str, str], list[tuple[tuple[str, str], Path, int]]]:
        """Which option each option file's defaults list names: (group, option) -> [(named, file, line)]."""
        edges: dict[tuple[str, str], list[tuple[tuple[str, str], Path, int]]] = {}
        for group in GROUPS:
            for d in self.search_dirs:
                for path in sorted((d / group).glob("*.yaml")) if (d / group).is_dir() else []:
                    try:
                        text = path.read_text(encoding="utf-8")
                        doc = yaml.safe_load(text)
                    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
                        continue
                    entries = doc.get("defaults") if isinstance(doc, dict) else None
                    for entry in entries if isinstance(entries, list) else []:
                        if isinstance(entry, str) and entry != "_self_":
                            named = (group, entry.split("@")[0])
                        elif isinstance(entry, dict) and len(entry) == 1 and isinstance(next(iter(entry.values())), str):
                            key, value = next(iter(entry.items()))
                            named = (str(key).removeprefix("override ").strip("/").split("@")[0], value)
                        else:
                            continue
                        name = named[1]
                        line = next((i for i, s in enumerate(text.splitlines(), 1)
                                     if s.strip().startswith("-") and s.strip().endswith(name)), 1)
                        edges.setdefault((group, path.stem), []).append((named, path, line))
        return edges

    def _defaults_cycle(self, overrides: tuple[str, ...]) -> Diagnostic:
        """The defaults lists that name each other, found in the files (Hydra only ran out of stack)."""
        edges = self._defaults_edges()

        chosen = [tuple(o.split("=", 1)) for o in overrides if o.split("=", 1)[0] in GROUPS and "=" in o]
        for start in [*[c for c in chosen if c in edges], *edges]:  # the composition's own options first
            cycle = self._find_cycle(edges, start)
            if cycle:
                names = " -> ".join(f"{g}/{o}" for g, o in [start, *[n for n, _, _ in cycle]])
                _, file, line = cycle[0]
                col = file.read_text(encoding="utf-8").splitlines()[line - 1].find(cycle[0][0][1]) + 1
                return _diag(codes.COMPOSITION_FAILED,
                             f"the defaults lists form a cycle: {names}; Hydra recurses without end composing it",
                             Location.in_file(file, line, max(col, 1)), composition=overrides,
                             fix=f"remove '{cycle[0][0][1]}' from the defaults list of {display_path(file)}")
        return _diag(codes.COMPOSITION_FAILED, "Hydra recursed without end composing the config (a defaults list "
                     "that names itself, directly or through others)", self._primary_location(),
                     composition=overrides)

    @staticmethod
    def _find_cycle(edges: dict, start: tuple[str, str]) -> list | None:
        """The edges of a path from ``start`` back to itself (depth-first), or None."""
        stack = [(start, [])]
        seen: set[tuple[str, str]] = set()
        while stack:
            node, path = stack.pop()
            for named, file, line in edges.get(node, []):
                step = [*path, (named, file, line)]
                if named == start:
                    return step
                if named not in seen:
                    seen.add(named)
                    stack.append((named, step))
        return None

    def _primary_location(self) -> Location:
        path = self.find_file(PRIMARY)
        return Location.in_file(path) if path else Location(str(self.config_dir / f"{PRIMARY}.yaml"))

    def _yaml_error(self, e: yaml.MarkedYAMLError, overrides: Sequence[str]) -> Diagnostic:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(filter(None, [e.context, e.problem])) or _first_line(e)
        if mark is None:
            return _diag(codes.MALFORMED_YAML, f"invalid YAML: {problem}", self._primary_location(), composition=overrides)
        return _diag(codes.MALFORMED_YAML, f"invalid YAML: {problem}",
                     Location.in_file(mark.name, mark.line + 1, mark.column + 1), composition=overrides)

    def _missing_config(self, e: MissingConfigException, parsed: list[tuple[Override, int]],
                        overrides: Sequence[str]) -> Diagnostic:
        missing = getattr(e, "missing_cfg_file", None) or ""
        if "/" not in missing:
            return _diag(codes.COMPOSITION_FAILED, _first_line(e), self._primary_location(), composition=overrides)
        group, option = missing.rsplit("/", 1)
        loc = self._primary_location()
        primary = self.find_file(PRIMARY)
        if primary is not None:
            try:
                for key, (line, col) in positions(primary).items():
                    if re.fullmatch(rf"defaults\[\d+\]\.(override )?{re.escape(group)}", key):
                        loc = Location.in_file(primary, line, col)
            except yaml.YAMLError:
                pass
        return self._unknown_option(group, option, loc, overrides)

    def _composition_error(self, e: ConfigCompositionException, parsed: list[tuple[Override, int]],
                           overrides: Sequence[str]) -> Diagnostic:
        cause = e.__cause__
        full_key = getattr(cause, "full_key", None)
        if full_key and "not in struct" in str(cause):
            for ov, col in parsed:
                if ov.key_or_group == full_key:
                    return self._unknown_override(ov, col, parsed, overrides)
        if isinstance(cause, yaml.MarkedYAMLError):
            return self._yaml_error(cause, overrides)
        return _diag(codes.COMPOSITION_FAILED, f"Hydra could not compose the config: {_first_line(e)}",
                     self._primary_location(), composition=overrides)

    def _unknown_override(self, ov: Override, col: int, parsed: list[tuple[Override, int]],
                          overrides: Sequence[str]) -> Diagnostic:
        key = ov.key_or_group
        base = [o.input_line for o, _ in parsed if self._is_group_override(o)]
        keys: list[str] = []
        try:
            base_cfg = hydra_compose(PRIMARY, overrides=[b for b in base if b])
            keys = _all_keys(OmegaConf.to_container(base_cfg, resolve=False), "")
        except Exception:  # noqa: BLE001 - suggestions are best effort; the diagnostic stands without them
            pass
        close = close_matches(key, keys)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        fix = None
        if close and ov.input_line:
            fix = close[0] + ov.input_line[ov.input_line.index("="):]
        parent = parent_key(key)
        siblings = sorted(k.rsplit(".", 1)[-1] for k in keys if parent_key(k) == parent and "[" not in k)
        known = f" Keys of '{parent}': {', '.join(siblings)}." if parent and siblings else ""
        return _diag(codes.UNKNOWN_OVERRIDE, f"cannot override '{key}': the composed config has no such key{hint}.{known}",
                     Location(COMMAND_LINE, 1, col), key=key, fix=fix, composition=overrides)

    def _origins(self, defaults: list, parsed: list[tuple[Override, int]]
                 ) -> tuple[dict[str, Location], Location]:
        origins: dict[str, Location] = {}
        primary = self._primary_location()
        for d in defaults:
            path_ = d.config_path
            package = d.package or ""
            if path_ is None or path_.startswith("hydra/") or package.split(".")[0] == "hydra":
                continue
            file = self.find_file(path_)
            if file is None:
                continue
            if d.primary:
                primary = Location.in_file(file)
            shown = display_path(file)
            if package:
                origins[package] = Location(shown, 1, 1)
            for key, (line, col) in positions(file).items():
                if key == "defaults" or key.startswith(("defaults[", "defaults.")):
                    continue
                origins[join(package, key) if package else key] = Location(shown, line, col)
        for ov, col in parsed:
            if self._is_group_override(ov):
                continue
            key = ov.key_or_group
            stale = [k for k in origins if k == key or k.startswith((key + ".", key + "["))]
            for k in stale:
                del origins[k]
            if ov.is_delete():
                continue
            text = ov.input_line or ""
            origins[key] = Location(COMMAND_LINE, 1, col + (text.index("=") + 1 if "=" in text else 0))
        return origins, primary

    def _resolve(self, node: Any, prefix: str, comp: Composition, diags: list[Diagnostic]) -> Any:
        """Plain values of ``node``; each missing value or broken interpolation becomes a diagnostic."""
        if isinstance(node, DictConfig):
            items: list[tuple[Any, str]] = [(k, join(prefix, str(k))) for k in node.keys()]
        elif isinstance(node, ListConfig):
            items = [(i, join(prefix, i)) for i in range(len(node))]
        else:
            return node
        out: Any = {} if isinstance(node, DictConfig) else []
        for k, key in items:
            if OmegaConf.is_missing(node, k):
                diags.append(_diag(codes.MISSING_VALUE,
                                   f"'{key}' is mandatory ('???') and nothing sets it",
                                   comp.locate(key), key=key, fix=f"{key}=VALUE", composition=comp.overrides))
                continue
            try:
                value = node[k]
            except OmegaConfBaseException as e:
                diags.append(_diag(codes.BROKEN_INTERPOLATION,
                                   f"'{key}' does not resolve: {_first_line(e)}",
                                   comp.locate(key), key=key, composition=comp.overrides))
                continue
            value = self._resolve(value, key, comp, diags)
            if isinstance(out, dict):
                out[str(k)] = value
            else:
                out.append(value)
        return out


def _all_keys(node: Any, prefix: str) -> list[str]:
    keys: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            key = join(prefix, str(k))
            keys.append(key)
            keys.extend(_all_keys(v, key))
    return keys
