"""The generation backend shared by C2-Eval and C2-Syn: in-process transformers or a server.

Both jobs render prompts themselves and hand them here as text; the backend tokenizes them
once, fetches and loads the model (or opens the server client), picks a batch size for the
device, and samples.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ccapp.engines.events import Log, ModelLoading, Sink
from ccapp.engines.generation.types import Generated, Prompt, Sampling
from ccapp.engines.options import Checked, Problem, job_config, option, section

ENGINES = ("hf", "openai")
DTYPES = ("auto", "bfloat16", "float16", "float32")
LOADING = "loading the model"
SERVER = "in-process, or an OpenAI-compatible server"


def normalize_device(text: str) -> str:
    """A given `--device` as models.parse_device reads it (imported when a value is given, so
    that declaring the option costs `ccapp --help` nothing)."""
    from ccapp.engines.generation.models import parse_device

    return parse_device(text)


def normalize_dtype(text: str) -> str:
    """A given `--dtype` as models.parse_dtype reads it (bf16 is bfloat16)."""
    from ccapp.engines.generation.models import parse_dtype

    return parse_dtype(text)


MODEL_HELP = "preset (llama2, qwen_7, tiny, …), Hugging Face id, or folder"  # every job's --model


MODEL_FIX = "give a preset, a Hub id (org/name), a model folder or a .gguf file"


def model_spec_problem(spec: str) -> str | None:
    """Every job's --model check (models.model_problem, which imports this module)."""
    from ccapp.engines.generation.models import model_problem

    return model_problem(spec)


loading = section(LOADING)
server = section(SERVER)


@job_config
class BackendOptions(Checked):
    """The loading and batching settings of every job that generates (eval, syn): declared
    once here, and the base of their configs, so each job's command line, form and stored
    config carry them under the same names."""

    engine: str = server(
        "hf",
        "in-process transformers (hf, default) or an OpenAI-compatible server (openai)",
        choices=ENGINES,
        shown=True,
    )
    revision: str | None = loading(
        None, "the Hub model's branch, tag or commit (default: main)", metavar="REV"
    )
    device: str = loading(
        "auto",
        "cpu, cuda:N, mps or auto (default: config, else auto)",
        label="Device",
        widget="select",
        convert=normalize_device,
        decides_results=False,
        shown=True,
    )
    dtype: str = loading(
        "auto",
        "auto, float32, bfloat16 or float16 (default: config, else auto)",
        label="Dtype",
        widget="select",
        choices=DTYPES,
        convert=normalize_dtype,
        shown="dtype_resolved",
        row="precision",
    )
    load_in_4bit: bool = loading(
        False, "4-bit weights (CUDA)", label="4-bit", widget="switch", row="precision"
    )
    batch_size: int | None = loading(
        None,
        "rows per batch (default: from the device)",
        minimum=1,
        decides_results=False,
        shown=True,
    )
    base_url: str | None = server(
        None,
        "the server for --engine openai, e.g. http://host:8000/v1",
        metavar="URL",
        decides_results=False,
    )
    served_model: str | None = server(
        None, "model name on the server (default: --model)", metavar="NAME"
    )
    concurrency: int = server(8, "parallel server requests", minimum=1, decides_results=False)
    request_timeout: float = server(
        120.0,
        "seconds before a server request is retried",
        metavar="S",
        above=0,
        decides_results=False,
    )
    max_retries: int = server(
        5,
        "retries of a failed server request, with backoff honouring Retry-After",
        minimum=0,
        decides_results=False,
    )
    max_new_tokens: int = option(default=32, help="tokens per generation", minimum=1)

    def problems(self) -> list[Problem]:
        """The job's checks, then the loading options' together (`backend_problems`)."""
        return super().problems() + backend_problems(self)


def backend_problems(config: BackendOptions) -> list[Problem]:
    """What the loading options refuse together (each one alone: its declaration)."""
    if config.engine == "openai" and not config.base_url:
        return [
            Problem(
                "base_url",
                "the openai engine needs the server's URL",
                "give it, e.g. --base-url http://127.0.0.1:8000/v1",
            )
        ]
    return []


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
    def load(cls, ref: Any, sink: Sink, config: BackendOptions, *, min_rows: int = 1) -> Backend:
        """`min_rows`: a batch holds at least this many rows (e.g. one cell's paths)."""
        from ccapp.engines.generation.models import load_model, load_tokenizer

        if ref.note:
            sink.emit(ModelLoading(phase="resolve", detail=ref.note))
        from ccapp.engines.generation.hub import snapshot_of

        folder = snapshot_of(
            ref,
            lambda **f: sink.emit(ModelLoading(**f)),
            revision=config.revision,
            weights=config.engine == "hf",
        )
        if config.engine == "openai":
            sink.emit(ModelLoading(phase="tokenizer", detail=ref.source))
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
            rows = config.batch_size or max(min_rows, config.concurrency * min_rows)
            sink.emit(ModelLoading(phase="ready", detail=config.base_url))
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

        sink.emit(ModelLoading(phase="weights", detail=ref.source))
        loaded = load_model(
            ref,
            device=config.device,
            dtype=config.dtype,
            load_in_4bit=config.load_in_4bit,
            folder=folder,  # the fetched snapshot: the revision asked for, not the cache's main
        )
        sink.emit(ModelLoading(phase="ready", detail=f"{loaded.device} {loaded.dtype}"))
        rows = config.batch_size or auto_batch_rows(loaded, config, min_rows)
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
                    Log(
                        level="warning",
                        message=(
                            f"the server refused {' and '.join(self.server_refused)}: it "
                            "samples with its own values for them, not the run's (recorded in "
                            "the run)"
                        ),
                    )
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


def auto_batch_rows(loaded: Any, config: BackendOptions, min_rows: int = 1) -> int:
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
    return max(min_rows, min(512, rows))
