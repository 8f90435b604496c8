"""The lint rules: one module per rule, registered in the single table ``RULES`` below.

A rule module defines ``CODE``, ``NAME`` (the bad pattern it names), ``SEVERITY``, a
docstring in ruff's form (What it does / Why is this bad? / Example / Use instead) and
``check(ctx) -> Iterable[Finding]``. Rules see only schema-valid configs.
"""

from __future__ import annotations

import inspect
from types import ModuleType

from loracfg.compiler.lint.codes import CHECKS, Code
from loracfg.compiler.lint.rules import (
    adapter_scope_not_in_model,
    attention_unsupported_on_device,
    bf16_without_hardware_support,
    bitsandbytes_without_cuda,
    compute_dtype_mismatch,
    data_format_mismatches_task,
    deprecated_argument,
    effective_batch_size_out_of_range,
    evaluation_without_eval_split,
    fp16_and_bf16,
    fractional_interval_above_one,
    fsdp_quant_storage_mismatch,
    fsdp_without_cuda,
    hardware_facts_contradict_device,
    interval_longer_than_run,
    learning_rate_atypical_for_lora,
    learning_rate_out_of_range,
    load_best_model_strategy_mismatch,
    lora_dropout_too_high,
    lora_init_unsupported,
    lora_rank_too_high,
    lora_scaling_out_of_range,
    max_length_exceeds_model,
    max_steps_overrides_epochs,
    memory_exceeds_device,
    metric_not_computed,
    nodes_without_launcher,
    optimizer_cannot_run,
    packing_unsupported_for_format,
    paged_optimizer_without_cuda,
    random_weights_for_pretrained_name,
    rank_above_layer_width,
    scheduler_arguments_mismatch,
    scheduler_ignores_warmup,
    setting_ignored,
    target_module_not_in_model,
    trust_remote_code,
    warmup_missing_or_too_long,
    weight_decay_too_high,
    world_size_changes_batch,
)

_MODULES: tuple[ModuleType, ...] = (
    learning_rate_out_of_range,
    learning_rate_atypical_for_lora,
    lora_scaling_out_of_range,
    warmup_missing_or_too_long,
    max_steps_overrides_epochs,
    effective_batch_size_out_of_range,
    weight_decay_too_high,
    fp16_and_bf16,
    bf16_without_hardware_support,
    paged_optimizer_without_cuda,
    bitsandbytes_without_cuda,
    target_module_not_in_model,
    load_best_model_strategy_mismatch,
    trust_remote_code,
    lora_dropout_too_high,
    lora_rank_too_high,
    deprecated_argument,
    max_length_exceeds_model,
    memory_exceeds_device,
    data_format_mismatches_task,
    packing_unsupported_for_format,
    evaluation_without_eval_split,
    interval_longer_than_run,
    scheduler_ignores_warmup,
    fractional_interval_above_one,
    scheduler_arguments_mismatch,
    optimizer_cannot_run,
    lora_init_unsupported,
    adapter_scope_not_in_model,
    hardware_facts_contradict_device,
    attention_unsupported_on_device,
    compute_dtype_mismatch,
    random_weights_for_pretrained_name,
    rank_above_layer_width,
    setting_ignored,
    metric_not_computed,
    fsdp_quant_storage_mismatch,
    fsdp_without_cuda,
    world_size_changes_batch,
    nodes_without_launcher,
)


def _rule(module: ModuleType) -> Code:
    return Code(module.CODE, module.NAME, module.SEVERITY, inspect.cleandoc(module.__doc__ or ""), "rule", module.check)


RULES: tuple[Code, ...] = tuple(_rule(m) for m in _MODULES)
ALL_CODES: dict[str, Code] = {c.code: c for c in CHECKS + RULES}


def lookup(code_or_name: str) -> Code | None:
    key = code_or_name.strip()
    return ALL_CODES.get(key.upper()) or next((c for c in ALL_CODES.values() if c.name == key), None)
