"""Chat templates: the tokenizer's own (``chat_template: auto``) or one shipped here, and the rendering that
finds which characters of a conversation are learned (assistant turns) and which are not.

The assistant spans are found the way TRL's completion_only_loss and axolotl's find_turn do it: the
conversation up to a turn, rendered with the generation prompt, must be a prefix of the conversation
rendered with the turn; what the turn adds past that prefix (its text and the end-of-turn markup) is
learned. A template for which that does not hold is an error naming it, never a row with nothing learned.
"""

from __future__ import annotations

import re
from typing import Any

GENERATION = re.compile(r"{%-?\s*generation\s*-?%}")

SHIPPED = {
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
    "llama-3": (
        "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"),
    "mistral": (
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + "
        "'\\n\\n' }}{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"),
    "alpaca": (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
        "{% else %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"),
}


class TemplateError(Exception):
    pass


def resolve(tokenizer: Any, name: str) -> tuple[str, str]:
    """(the template's name, its Jinja source); ``auto`` is the tokenizer's own, else chatml."""
    own = getattr(tokenizer, "chat_template", None)
    if name == "auto":
        return ("the tokenizer's own", own) if isinstance(own, str) and own else ("chatml", SHIPPED["chatml"])
    return name, SHIPPED[name]


def apply(tokenizer: Any, data: dict[str, Any]) -> tuple[str, str]:
    """Resolve data.chat_template once and set it on the tokenizer, so the adapter is saved with it."""
    template = resolve(tokenizer, data["chat_template"])
    tokenizer.chat_template = template[1]
    return template


def _render(tokenizer: Any, template: str, turns: list[tuple[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in turns], chat_template=template,
                                         tokenize=False, add_generation_prompt=generation_prompt)


def segments(tokenizer: Any, template: tuple[str, str], turns: list[tuple[str, str]],
             train_on_inputs: bool) -> list[tuple[str, bool]]:
    """The rendered conversation as consecutive (text, learned) pieces."""
    name, source = template
    out: list[tuple[str, bool]] = []
    done = ""
    for i, (role, _) in enumerate(turns):
        if role != "assistant":
            continue
        prefix = _render(tokenizer, source, turns[:i], True)
        upto = _render(tokenizer, source, turns[: i + 1], False)
        if not (prefix.startswith(done) and upto.startswith(prefix)) or upto == prefix:
            raise TemplateError(f"chat template {name} does not render the conversation before assistant turn {i} "
                                f"as a prefix of the conversation with it, so its learned span cannot be found; set "
                                f"data.chat_template to one shipped with loracfg (chatml, llama-3, mistral, alpaca)")
        out += [(prefix[len(done):], train_on_inputs), (upto[len(prefix):], True)]
        done = upto
    rest = _render(tokenizer, source, turns, False)[len(done):]
    if rest:
        out.append((rest, train_on_inputs))
    return [(text, learned) for text, learned in out if text]


def has_generation(source: str) -> bool:
    """Whether a template marks the assistant's tokens with ``{% generation %}`` blocks."""
    return bool(GENERATION.search(source))


def assistant_mask(tokenizer: Any, template: tuple[str, str],
                   turns: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
    """input_ids and the template's assistant mask (1 inside ``{% generation %}`` blocks), from the tokenizer's
    ``apply_chat_template(return_assistant_tokens_mask=True)``; a conversation with an assistant turn whose
    mask is all 0 is an error naming the template."""
    name, source = template
    enc = tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in turns], chat_template=source,
                                        tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
    if 1 not in mask:
        raise TemplateError(f"chat template {name} has {{% generation %}} blocks but they mark no token of the "
                            f"assistant turns; fix the template or set data.chat_template to one shipped with "
                            f"loracfg (chatml, llama-3, mistral, alpaca)")
    return ids, mask


def prompt(tokenizer: Any, template: tuple[str, str], turns: list[tuple[str, str]]) -> str:
    """The conversation rendered for generation: what inference feeds the model."""
    return _render(tokenizer, template[1], turns, True)
