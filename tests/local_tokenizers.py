"""Tokenizers built here for tests (no download): a small byte-level BPE fast tokenizer, and a chatml
template whose assistant turns are ``{% generation %}`` blocks."""

from __future__ import annotations

from pathlib import Path


def fast_tokenizer(bos: bool = False):
    """A byte-level BPE fast tokenizer built here (no download); with ``bos`` it starts every sequence with <s>."""
    import transformers
    from tokenizers import ByteLevelBPETokenizer, Tokenizer, processors

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["What is 2 plus 2? 2 plus 2 is 4. Hello there, how are you?"] * 5, vocab_size=300,
                            special_tokens=["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"])
    raw = Tokenizer.from_str(bpe.to_str())  # the tokenizers object itself (truncation, word_ids)
    if bos:
        raw.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>")


GENERATION_CHATML = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def save_fast_tokenizer(path: Path, template: str = GENERATION_CHATML) -> Path:
    """The fast tokenizer with ``template`` as its own chat template, saved where from_pretrained finds it."""
    tok = fast_tokenizer()
    tok.chat_template = template
    tok.save_pretrained(path)
    return path
