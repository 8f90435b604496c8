"""Values that came from the environment never appear in a diagnostic.

Linting runs on untrusted pull requests (pre-commit, CI), and a config may read a secret with
``${oc.env:NAME}``. Lint still resolves it (a learning rate from the environment is checked like any
other), but every value the ``oc.env`` resolver returns is remembered, and ``redact`` writes the
interpolation as the config spells it (``${oc.env:NAME}``) wherever such a value would be printed: schema
and rule messages, fixes, every output format. ``oc.env`` is the only resolver that reads outside the
config files (OmegaConf's ``oc.decode``/``oc.create``/``oc.select`` and Hydra's ``hydra:`` read the config
itself); ``_target_`` keys are never instantiated by lint.
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import OmegaConf
from omegaconf.resolvers import oc

_SEEN: dict[str, str] = {}  # the value as text -> "${oc.env:NAME}"
_NO_DEFAULT = object()


def _env(key: str, default: Any = _NO_DEFAULT) -> str | None:
    value = oc.env(key) if default is _NO_DEFAULT else oc.env(key, default)
    if value:
        _SEEN[str(value)] = f"${{oc.env:{key}}}"
    return value


OmegaConf.register_new_resolver("oc.env", _env, replace=True, use_cache=False)


def redact(text: str | None) -> str | None:
    """``text`` with every environment value it shows replaced by the interpolation that read it."""
    if not text or not _SEEN:
        return text
    for value in sorted(_SEEN, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", lambda _m, v=value: _SEEN[v], text)
    return text
