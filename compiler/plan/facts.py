"""Architecture facts of a model, read off the real transformers architecture built on the meta device.

The linter and the estimator never import torch: they read the facts that each ``conf/model/``
option carries (``linear_modules``, ``other_modules``). This module is where those facts come
from and how they are checked: it builds the architecture from the option's ``config`` (no
weights, no download, 8B models included) and lists every parameterised module by its name, the
last part of its path, which is how peft's ``target_modules`` and ``modules_to_save`` match.

Used by ``scripts/model_facts.py`` (write the facts of a new model from its config.json) and by
the test that holds the shipped facts equal to the real ones. Needs the ``train`` extra.
"""

from __future__ import annotations

from typing import Any, Mapping

from loracfg.compiler.plan.build import AUTO_CLASSES


def meta_model(config: Mapping[str, Any], task: str, num_labels: int | None = None) -> Any:
    """The ``transformers`` model of ``task`` built from config.json keys on the meta device."""
    import torch
    import transformers
    from transformers import AutoConfig

    extra = {"num_labels": num_labels} if num_labels and task in ("seq-cls", "token-cls") else {}
    cfg = AutoConfig.for_model(**dict(config), **extra)
    with torch.device("meta"):
        return getattr(transformers, AUTO_CLASSES[task][0]).from_config(cfg)


def facts_of(model: Any) -> dict[str, Any]:
    """``linear_modules``, ``other_modules`` and ``no_split_modules`` of a built model, in module order.

    linear_modules: name -> one entry per distinct shape: in_features, out_features, bias, count
    (and ``tied: true`` where the weight is another module's, e.g. a tied output head).
    other_modules: name -> count, parameters, bias_parameters, summed over the modules of that name
    (embeddings, norms: every parameterised module that is not ``nn.Linear``).
    Parameters shared between modules are counted once, at their first module, as
    ``model.num_parameters()`` counts them.
    no_split_modules: the model's ``_no_split_modules`` (its transformer layer classes), FSDP's wrap classes.
    """
    import torch

    seen: set[int] = set()
    linear: dict[str, dict[tuple, int]] = {}
    other: dict[str, dict[str, int]] = {}
    for path, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        name = path.rsplit(".", 1)[-1]
        fresh = [(n, p) for n, p in own if id(p) not in seen]
        seen.update(id(p) for _, p in own)
        if isinstance(module, torch.nn.Linear):
            tied = any(n == "weight" for n, _ in own) and not any(n == "weight" for n, _ in fresh)
            key = (module.in_features, module.out_features, module.bias is not None, tied)
            shapes = linear.setdefault(name, {})
            shapes[key] = shapes.get(key, 0) + 1
        elif fresh:
            o = other.setdefault(name, {"count": 0, "parameters": 0, "bias_parameters": 0})
            o["count"] += 1
            o["parameters"] += sum(p.numel() for _, p in fresh)
            o["bias_parameters"] += sum(p.numel() for n, p in fresh if n == "bias")
    linear_modules = {
        name: [{"in_features": i, "out_features": o, "bias": b, "count": c, **({"tied": True} if t else {})}
               for (i, o, b, t), c in shapes.items()]
        for name, shapes in linear.items()
    }
    # the classes that must stay whole on one device: FSDP wraps (shards) the model at these, the decoder layers
    no_split = sorted(getattr(model, "_no_split_modules", None) or [])
    return {"linear_modules": linear_modules, "other_modules": other, "no_split_modules": no_split}


def facts_for(model_section: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a ``model`` config section (its ``config``, ``task`` and ``num_labels``)."""
    return facts_of(meta_model(model_section["config"], model_section["task"], model_section.get("num_labels")))
