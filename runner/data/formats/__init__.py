"""One module per row format (``data.format``), one registry: each turns a row into an ``Example``."""

from __future__ import annotations

from types import ModuleType

from loracfg.runner.data.formats import (
                                                          alpaca,
                                                          classification,
                                                          completion,
                                                          messages,
                                                          text,
                                                          token_cls,
)

FORMATS: dict[str, ModuleType] = {m.NAME: m for m in (text, completion, alpaca, messages, classification,
                                                          token_cls)}
