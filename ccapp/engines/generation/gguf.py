"""GGUF files as a model source: converted once into a plain safetensors folder in the cache.

transformers can load a GGUF file only by dequantizing it on every load (slow for big files)
and refuses to save or train such a model ("quantized with gguf"). So ccapp converts a GGUF
file once: the dequantized weights go into a fresh model built from the config alone (no
`quantization_config`, so it trains like any other folder), saved with its tokenizer under
the cache, keyed by the file's sha256. The sha256 is the model's revision in runs and reports:
two files with the same name but different bytes are different models.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccapp.config import paths
from ccapp.engines.data import sha256_file
from ccapp.errors import UserError

CONVERTER_VERSION = 1  # bump when the conversion changes, so old folders are rebuilt
MARKER = "ccapp-gguf.json"
# "org/name/file.gguf" (or deeper): a file of a Hub repository, as in the Hub's own URLs.
HUB_GGUF = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)/(?P<file>[\w./-]+\.gguf)$")

Report = Callable[..., None]


def is_gguf_spec(spec: str) -> bool:
    return spec.lower().endswith(".gguf")


def converted_folder(gguf_path: Path, *, where: str = "--model") -> tuple[Path, str]:
    """(folder of the converted model, sha256 of the file), converting on first use."""
    if not gguf_path.is_file():
        raise UserError(
            f"no such GGUF file: {gguf_path}",
            where=where,
            fix="give the path of an existing .gguf file, or a Hub repo and file as ORG/NAME/FILE.gguf",
        )
    digest = sha256_file(gguf_path)
    folder = paths().models_cache / f"gguf-{digest[:16]}"
    if _is_complete(folder, digest):
        return folder, digest
    _check_architecture(gguf_path, where)
    _convert(gguf_path, folder, digest, where)
    return folder, digest


def hub_gguf(spec: str) -> Path:
    """Download `ORG/NAME/FILE.gguf` from the Hub (or find it in Hugging Face's cache)."""
    match = HUB_GGUF.match(spec)
    if match is None:
        raise UserError(
            f"'{spec}' is neither a local .gguf file nor ORG/NAME/FILE.gguf",
            where="--model",
            fix="give an existing .gguf path, or a Hub repository and file such as "
            "bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
        )
    from huggingface_hub import hf_hub_download

    repo, name = match.group("repo"), match.group("file")
    try:
        return Path(hf_hub_download(repo, name))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot download {name} from {repo} ({first})",
            where="--model",
            fix="check the repository and file name and your connection, or pass a local .gguf file",
        ) from None


def _is_complete(folder: Path, digest: str) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("sha256") == digest and marker.get("converter") == CONVERTER_VERSION


def _check_architecture(gguf_path: Path, where: str) -> None:
    """One clear line for an architecture transformers cannot dequantize."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    try:
        from gguf import GGUFReader
    except ImportError:
        raise UserError(
            "reading GGUF files needs the gguf package",
            where=where,
            fix="pip install gguf",
        ) from None
    try:
        reader = GGUFReader(str(gguf_path))
        field = reader.fields["general.architecture"]
        architecture = bytes(field.parts[field.data[0]]).decode()
    except Exception as exc:  # truncated, not GGUF at all, or no architecture key
        raise UserError(
            f"not a readable GGUF file ({type(exc).__name__}: {exc})".rstrip(": "),
            where=str(gguf_path),
            fix="check that the download is complete (compare its sha256 with the Hub's)",
        ) from None
    supported = [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]
    if architecture not in supported:
        raise UserError(
            f"GGUF architecture '{architecture}' cannot be loaded by transformers",
            where=str(gguf_path),
            fix=f"use a model of a supported architecture ({', '.join(supported)}) or its "
            "original safetensors folder",
        )


def _convert(gguf_path: Path, folder: Path, digest: str, where: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    source, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
        quantized = AutoModelForCausalLM.from_pretrained(
            source, gguf_file=name, dtype=torch.float32
        )
    except (NotImplementedError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot dequantize this GGUF file ({first})",
            where=str(gguf_path),
            fix="use a file with a quantization type the gguf package can dequantize "
            "(F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K–Q6_K), or the original folder",
        ) from None
    config = quantized.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config = quantized.generation_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".gguf-", dir=folder.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MARKER).write_text(
            json.dumps(
                {"sha256": digest, "file": str(gguf_path), "converter": CONVERTER_VERSION},
                indent=2,
            )
        )
        shutil.rmtree(folder, ignore_errors=True)
        staging.replace(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def describe(folder: Path) -> dict[str, Any]:
    """What a converted folder came from (for reports), or {} for other folders."""
    try:
        return json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return {}
