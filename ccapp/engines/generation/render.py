"""Rendering a request and a prefill so that the model continues the prefill.

The paper's code closed the assistant turn for most templates (`add_generation_prompt`),
so models answered a fresh turn instead of continuing the harmful text. Here the prefill is
the final assistant message, rendered with `continue_final_message=True`, and every
rendered prompt is checked to end with the prefill before anything is generated.
"""

from __future__ import annotations

import re
from typing import Any

from ccapp.errors import UserError

_SPACE = re.compile(r"\s+")


def render_prompt(
    tokenizer: Any, request: str, prefill: str, *, model_name: str = "the model"
) -> str:
    messages = [
        {"role": "user", "content": request},
        {"role": "assistant", "content": prefill},
    ]
    try:
        rendered = tokenizer.apply_chat_template(
            messages, tokenize=False, continue_final_message=True
        )
    except Exception as exc:  # jinja errors, templates that reject the roles, …
        raise UserError(
            f"the chat template of {model_name} cannot render a prefilled assistant turn ({exc})",
            where="--model",
            fix="use a model whose chat template supports an assistant message at the end",
        ) from None
    check_continues(rendered, prefill, model_name)
    return str(rendered)


def check_continues(rendered: str, prefill: str, model_name: str) -> None:
    """Refuse a template that does not leave the prefill at the very end of the prompt."""
    if not _normalise(rendered).endswith(_normalise(prefill)):
        tail = rendered[-60:].replace("\n", "\\n")
        raise UserError(
            f"the chat template of {model_name} does not end the prompt with the prefill "
            f"(it ends with …{tail!r}), so the model would not continue the prefilled text",
            where="--model",
            fix="use a model whose chat template supports continue_final_message",
        )


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def strip_leading_bos(tokenizer: Any, prompt: str) -> str:
    """The prompt text for servers that add BOS themselves (vLLM, TGI, llama.cpp).

    A rendered template usually starts with the BOS text; a completions server that also
    adds BOS when tokenizing would give the model two (the paper's "null BOS" family of
    bugs). When the tokenizer adds BOS by default, the server will too, so drop ours.
    """
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or not prompt.startswith(bos):
        return prompt
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    adds_bos = bool(ids) and ids[0] == tokenizer.bos_token_id
    return prompt[len(bos) :] if adds_bos else prompt
