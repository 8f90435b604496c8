"""The peer of benchmarks/runner_overhead.py: the same LoRA job written by hand with transformers + peft,
the way their documentation shows it (no loracfg in the training path).

Same model (tiny Llama from config, seed 42), same data (the 2000 tiny-patterns rows, shuffled with the seed),
same hyper-parameters as `python train.py` with the shipped defaults and the benchmark's overrides.
Prints FIRST_STEP_UNIX=<time> at the end of the first optimizer step. Under torchrun (benchmarks/ddp_scaling.py)
it is the hand-written data-parallel job: gloo on the CPU, find_unused_parameters off for the PeftModel, rank 0
saves.
"""

import os
import random
import sys
import tempfile
import time

import torch
from loracfg.runner.data.builtin import (
    tiny_patterns,  # the data rows only, so both sides train on the same text
)
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    ByT5Tokenizer,
    DataCollatorForLanguageModeling,
    LlamaConfig,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

MAX_STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
OUT = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp()

tokenizer = ByT5Tokenizer()
config = LlamaConfig(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                     intermediate_size=384, vocab_size=384, max_position_embeddings=512, tie_word_embeddings=False,
                     rms_norm_eps=1e-6, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
torch.manual_seed(42)
model = AutoModelForCausalLM.from_config(config)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                         task_type="CAUSAL_LM"))
model.print_trainable_parameters()

rows = tiny_patterns(2000, 42)
random.Random(42).shuffle(rows)
enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=128)
train = [{"input_ids": i, "attention_mask": m} for i, m in zip(enc["input_ids"], enc["attention_mask"])]


class FirstStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            print(f"FIRST_STEP_UNIX={time.time()}", flush=True)


args = TrainingArguments(output_dir=OUT, learning_rate=2e-4, lr_scheduler_type="cosine", warmup_steps=0.03,
                         max_steps=MAX_STEPS, per_device_train_batch_size=8, gradient_accumulation_steps=2,
                         logging_steps=10, save_strategy="no", eval_strategy="no", use_cpu=True, seed=42,
                         report_to="none",
                         **({"ddp_backend": "gloo", "ddp_find_unused_parameters": False}
                            if int(os.environ.get("WORLD_SIZE", "1")) > 1 else {}))
trainer = Trainer(model=model, args=args, train_dataset=train,
                  data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False), callbacks=[FirstStep()])
trainer.train()
if trainer.is_world_process_zero():
    trainer.model.save_pretrained(f"{OUT}/adapter")
    tokenizer.save_pretrained(f"{OUT}/adapter")
