"""The tiny offline chat model: a byte-level BPE tokenizer and a 2–4 layer Llama.

Tests, benchmarks and the demo need a real chat model without any download. After random
initialisation it gets a short warm-up on ccapp's own text laid out as chat turns, so that
it answers in words and ends its turns (an untrained model repeats one token forever).
Everything is deterministic for a given seed and text on a given machine, so two builds are
identical and a cached build can be trusted.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ccapp.config import paths
from ccapp.engines.generation.tiny_corpus import TEXT as OWN_TEXT

BUILDER_VERSION = 3  # bump when the build changes, so cached builds are not reused
WARMUP_STEPS = 60
WARMUP_LR = 3e-3
BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]

# Every turn ends with <|end|>; transformers' continue_final_message cuts the rendered text
# right after the final message's content, leaving the assistant turn open.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tiny_model(
    out_dir: Path,
    *,
    seed: int = 0,
    texts: Iterable[str] = (),
    vocab_size: int = 1024,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    warmup_steps: int = WARMUP_STEPS,
) -> Path:
    """Train the tokenizer on `texts` plus ccapp's own text, build the model, save both."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    if not 1 <= layers <= 8:
        raise ValueError("layers must be between 1 and 8")
    specials = [BOS, EOS, PAD, *ROLE_TOKENS]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator([OWN_TEXT, *texts], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens=ROLE_TOKENS,
        padding_side="left",
        model_max_length=2048,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    if warmup_steps:
        warm_up(model, tokenizer, steps=warmup_steps, seed=seed)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Writing model shards" bar on a first build
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    (out_dir / "ccapp_tiny.json").write_text(
        json.dumps(
            {
                "builder_version": BUILDER_VERSION,
                "seed": seed,
                "warmup_steps": warmup_steps,
                "layers": layers,
                "hidden": hidden,
                "vocab_size": len(tokenizer),
            },
            indent=2,
        )
    )
    return out_dir


def chat_examples(tokenizer: object) -> list[str]:
    """ccapp's own lines as two-turn chats: each line asks, the next one answers."""
    lines = [line for line in OWN_TEXT.splitlines() if line.strip()]
    return [
        tokenizer.apply_chat_template(  # type: ignore[attr-defined]
            [
                {"role": "user", "content": lines[i]},
                {"role": "assistant", "content": lines[(i + 1) % len(lines)]},
            ],
            tokenize=False,
        )
        for i in range(len(lines))
    ]


def warm_up(model: object, tokenizer: object, *, steps: int, seed: int) -> None:
    """Full-batch language-model training on the chat examples (a few seconds on a CPU)."""
    import torch

    encoded = tokenizer(  # type: ignore[operator]
        chat_examples(tokenizer),
        add_special_tokens=False,
        padding=True,
        padding_side="right",
        return_tensors="pt",
    )
    labels = encoded["input_ids"].clone()
    labels[encoded["attention_mask"] == 0] = -100
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=WARMUP_LR)  # type: ignore[attr-defined]
    model.train()  # type: ignore[attr-defined]
    for _ in range(steps):
        loss = model(**encoded, labels=labels).loss  # type: ignore[operator]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()  # type: ignore[attr-defined]


def ensure_tiny_model(seed: int = 0) -> Path:
    """The `tiny` preset: built into the cache on first use, then reused."""
    target = paths().models_cache / f"tiny-v{BUILDER_VERSION}-seed{seed}"
    if (target / "ccapp_tiny.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tiny-"))
    try:
        build_tiny_model(staging, seed=seed)
        try:
            staging.rename(target)
        except OSError:  # another process finished first; its build is identical
            if not (target / "ccapp_tiny.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
