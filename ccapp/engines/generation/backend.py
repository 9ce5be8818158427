"""The generation backend shared by C2-Eval and C2-Syn: in-process transformers or a server.

Both jobs render prompts themselves and hand them here as text; the backend tokenizes them
once, fetches and loads the model (or opens the server client), picks a batch size for the
device, and samples.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ccapp.engines.events import Sink
from ccapp.engines.generation.types import Generated, Prompt, Sampling


@dataclass(frozen=True)
class BackendOptions:
    """The loading and batching settings a job's config carries."""

    engine: str = "hf"
    device: str = "auto"
    dtype: str = "auto"
    load_in_4bit: bool = False
    batch_size: int | None = None
    base_url: str | None = None
    served_model: str | None = None
    concurrency: int = 8
    request_timeout: float = 120.0
    max_retries: int = 5
    max_new_tokens: int = 32
    min_rows: int = 1  # a batch holds at least this many rows (e.g. one cell's paths)

    @classmethod
    def of(cls, config: Any, *, min_rows: int = 1) -> BackendOptions:
        names = [f for f in cls.__dataclass_fields__ if f != "min_rows"]
        return cls(**{name: getattr(config, name) for name in names}, min_rows=min_rows)


class Backend:
    """The loaded model (hf) or the server client (openai), behind one `generate`."""

    def __init__(
        self,
        tokenizer: Any,
        generator: Any,
        rows_per_batch: int,
        *,
        engine: str,
        template_source: str,
        dtype: str,
        generation_defaults: dict[str, Any] | None = None,
    ):
        self.tokenizer = tokenizer
        self.generator = generator
        self.rows_per_batch = rows_per_batch
        self.engine = engine
        self.template_source = template_source
        self.dtype = dtype
        # What the model's generation config sets (top_k, repetition_penalty, …): the
        # defaults `generate` and vLLM would sample with (see ccapp.engines.generation.sampling).
        self.generation_defaults = generation_defaults or {}
        self._ids: dict[str, list[int]] = {}  # rendered prompt -> token ids
        self._warned_refused = False

    @classmethod
    def load(cls, ref: Any, sink: Sink, config: BackendOptions) -> Backend:
        from ccapp.engines.generation.models import load_model, load_tokenizer

        if ref.note:
            sink.emit("model_loading", phase="resolve", detail=ref.note)
        folder = None
        if not ref.is_local:
            from ccapp.engines.generation.hub import fetch

            folder = fetch(
                ref.source,
                lambda **f: sink.emit("model_loading", **f),
                weights=config.engine == "hf",
            )
        if config.engine == "openai":
            sink.emit("model_loading", phase="tokenizer", detail=ref.source)
            tokenizer, template_source = load_tokenizer(ref, folder)
            from ccapp.engines.generation.openai_generate import OpenAIGenerator
            from ccapp.engines.generation.sampling import load_model_defaults

            generator = OpenAIGenerator(
                str(config.base_url),
                config.served_model or ref.source,
                tokenizer,
                concurrency=config.concurrency,
                timeout_s=config.request_timeout,
                max_retries=config.max_retries,
            )
            rows = config.batch_size or max(config.min_rows, config.concurrency * config.min_rows)
            sink.emit("model_loading", phase="ready", detail=config.base_url)
            return cls(
                tokenizer,
                generator,
                rows,
                engine="openai",
                template_source=template_source,
                dtype="server",
                generation_defaults=load_model_defaults(
                    folder or (ref.source if ref.is_local else None)
                ),
            )
        from ccapp.engines.generation.hf_generate import HFGenerator
        from ccapp.engines.generation.sampling import model_defaults

        sink.emit("model_loading", phase="weights", detail=ref.source)
        loaded = load_model(
            ref, device=config.device, dtype=config.dtype, load_in_4bit=config.load_in_4bit
        )
        sink.emit("model_loading", phase="ready", detail=f"{loaded.device} {loaded.dtype}")
        rows = config.batch_size or auto_batch_rows(loaded, config)
        return cls(
            loaded.tokenizer,
            HFGenerator(loaded.model, loaded.tokenizer),
            rows,
            engine="hf",
            template_source=loaded.template_source,
            dtype=loaded.dtype,
            generation_defaults=model_defaults(getattr(loaded.model, "generation_config", None)),
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self,
        prompts: Sequence[tuple[int, str, Sequence[int]]],
        sampling: Sampling,
        seed: int,
        sink: Sink,
        cancel: threading.Event,
    ) -> list[Generated]:
        """Sample the given paths of each (key, rendered prompt)."""
        on_step = sink.tokens if getattr(sink, "wants_tokens", False) else None
        if self.engine == "openai":
            from ccapp.engines.generation.openai_generate import TextPrompt
            from ccapp.engines.generation.render import strip_leading_bos

            text_prompts = [
                TextPrompt(key, strip_leading_bos(self.tokenizer, text), tuple(paths))
                for key, text, paths in prompts
            ]
            generated = list(
                self.generator.generate(
                    text_prompts, sampling, seed, on_step=on_step, cancel=cancel
                )
            )
            if self.server_refused and not self._warned_refused:
                self._warned_refused = True
                sink.emit(
                    "log",
                    level="warning",
                    message=(
                        f"the server refused {' and '.join(self.server_refused)}: it samples "
                        "with its own values for them, not the run's (recorded in the run)"
                    ),
                )
            return generated
        missing = sorted({text for _, text, _ in prompts} - set(self._ids))
        self.tokenize_prompts(missing)
        hf_prompts = [Prompt(key, self._ids[text], tuple(paths)) for key, text, paths in prompts]
        return list(
            self.generator.generate(hf_prompts, sampling, seed, on_step=on_step, cancel=cancel)
        )

    @property
    def server_refused(self) -> tuple[str, ...]:
        """Sampling fields the generation server would not take (empty for hf)."""
        return tuple(getattr(self.generator, "server_refused", ()))

    def tokenize_prompts(self, prompts: list[str]) -> list[int]:
        """Tokenize rendered prompts in one batch call, keep the ids, return the lengths."""
        if not prompts:
            return []
        ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        self._ids.update(zip(prompts, ids))
        return [len(row) for row in ids]

    def known_prompts(self) -> set[str]:
        return set(self._ids)


def auto_batch_rows(loaded: Any, config: BackendOptions) -> int:
    """Rows per batch: 256 on CPU (fewer, wider decoding steps: 3.2× → 3.7× `generate` at
    b = 20 on SmolLM2 against 128); on a GPU, what the free memory holds for the KV cache."""
    import torch

    if not str(loaded.device).startswith("cuda"):
        return 256
    cfg = loaded.model.config
    layers = int(getattr(cfg, "num_hidden_layers", 32))
    heads = int(getattr(cfg, "num_key_value_heads", 0) or getattr(cfg, "num_attention_heads", 32))
    head_dim = int(getattr(cfg, "head_dim", 0) or cfg.hidden_size // cfg.num_attention_heads)
    bytes_per = 2 if loaded.dtype in ("bfloat16", "float16") else 4
    tokens = 256 + config.max_new_tokens  # C2-Eval prompts are ~100-200 tokens
    per_row = 2 * layers * heads * head_dim * bytes_per * tokens
    free = min(torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count()))
    rows = int(free * 0.5 // per_row)
    return max(config.min_rows, min(512, rows))
