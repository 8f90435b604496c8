"""L026's table of scheduler arguments is the installed transformers' schedule functions' signatures."""

from __future__ import annotations

import inspect

import pytest
from loracfg.compiler.lint.rules.scheduler_arguments_mismatch import (
    ACCEPTS,
    IGNORES,
    NEEDS,
)

optimization = pytest.importorskip("transformers.optimization")


def test_table_matches_installed_signatures():
    functions = {t.value: f for t, f in optimization.TYPE_TO_SCHEDULER_FUNCTION.items()}
    fixed = {"optimizer", "num_warmup_steps", "num_training_steps", "last_epoch"}
    for name, accepted in ACCEPTS.items():
        params = inspect.signature(functions[name]).parameters
        if name == "reduce_lr_on_plateau":  # get_reduce_on_plateau_schedule(optimizer, **kwargs) -> ReduceLROnPlateau
            import torch
            params = inspect.signature(torch.optim.lr_scheduler.ReduceLROnPlateau).parameters
            fixed = fixed | {"verbose"}
        assert set(accepted) == set(params) - fixed - {"optimizer"}, name
        required = {n for n, p in params.items() if p.default is inspect.Parameter.empty} - fixed
        assert required <= set(NEEDS.get(name, ((), ""))[0]), name
    assert set(ACCEPTS) | set(IGNORES) | {"greedy"} == set(functions)
