"""The sampling settings a run uses, resolved once and recorded with the run.

`model.generate` does not sample from temperature and top-p alone: it also applies the
model's `generation_config.json` (Qwen2's sets top_k 20 and repetition_penalty 1.05–1.1)
and, for what that leaves unset, transformers' defaults (top_k 50). vLLM applies the same
file by default. The paper's code called `generate`, so to sample the distribution the
paper sampled — and the same one on every engine — each setting is taken from, in order:

1. the run's own option (`--top-k`, `--repetition-penalty`; temperature and top-p always
   come from ccapp's options, whose defaults are the paper's 0.8 / 0.7 for C2-Eval and
   greedy for C2-Syn, so the model's own temperature and top_p never apply);
2. the model's generation config, where it sets the value;
3. transformers' default (top_k 50, repetition_penalty 1.0).

The resolved values go into the run's config (`sampling_resolved`, with where each came
from), the report, the hf sampler and every server request, so a run can be repeated on
another engine. Settings of the generation config that ccapp does not apply (min_p,
typical_p, no_repeat_ngram_size, …) are listed as `not_applied`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ccapp.engines.generation.types import Sampling

TRANSFORMERS_DEFAULTS = {"top_k": 50, "repetition_penalty": 1.0}
FROM_OPTION, FROM_MODEL, FROM_TRANSFORMERS = "option", "model generation_config", "transformers"
# Settings `generate` would apply that ccapp's sampler does not, with their neutral values.
_NOT_APPLIED = {
    "min_p": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "top_h": None,
    "no_repeat_ngram_size": 0,
    "encoder_repetition_penalty": 1.0,
    "sequence_bias": None,
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
}
# What ccapp sampled with before settings were resolved: temperature and top-p only.
LEGACY = {"top_k": 0, "repetition_penalty": 1.0}


def model_defaults(generation_config: Any) -> dict[str, Any]:
    """What a model's generation config sets (fields it leaves unset are left out)."""
    if generation_config is None:
        return {}
    values: dict[str, Any] = {}
    for name in ("top_k", "repetition_penalty", "temperature", "top_p", *_NOT_APPLIED):
        value = getattr(generation_config, name, None)
        if value is not None:
            values[name] = value
    return values


def load_model_defaults(folder: Any) -> dict[str, Any]:
    """The generation config saved beside a model (a local folder or a fetched snapshot);
    {} when there is none or it cannot be read, which leaves transformers' defaults."""
    from pathlib import Path

    if folder is None or not (Path(str(folder)) / "generation_config.json").is_file():
        return {}
    from transformers import GenerationConfig

    try:
        return model_defaults(GenerationConfig.from_pretrained(str(folder)))
    except (OSError, ValueError, TypeError):
        return {}


def resolve_sampling(
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int | None,
    repetition_penalty: float | None,
    model: dict[str, Any],
) -> tuple[Sampling, dict[str, Any]]:
    """The Sampling to use and the record of it that the run stores."""
    chosen: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, given in (("top_k", top_k), ("repetition_penalty", repetition_penalty)):
        if given is not None:
            chosen[name], sources[name] = given, FROM_OPTION
        elif model.get(name) is not None:
            chosen[name], sources[name] = model[name], FROM_MODEL
        else:
            chosen[name], sources[name] = TRANSFORMERS_DEFAULTS[name], FROM_TRANSFORMERS
    sampling = Sampling(
        max_new_tokens,
        temperature,
        top_p,
        int(chosen["top_k"]),
        float(chosen["repetition_penalty"]),
    )
    not_applied = {
        name: model[name]
        for name, neutral in _NOT_APPLIED.items()
        if name in model and model[name] != neutral
    }
    ignored = {name: model[name] for name in ("temperature", "top_p") if name in model}
    record = sampling_record(sampling) | {
        "source": sources | {"temperature": FROM_OPTION, "top_p": FROM_OPTION},
        "model_generation_config": {k: v for k, v in model.items() if k not in not_applied},
        "overridden_by_options": ignored,
        "not_applied": not_applied,
    }
    return sampling, record


def sampling_record(sampling: Sampling) -> dict[str, Any]:
    return {
        "max_new_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "repetition_penalty": sampling.repetition_penalty,
    }


def resolve_options(options: Any, model: dict[str, Any]) -> tuple[Sampling, dict[str, Any]]:
    """`resolve_sampling` for a job config that declares the sampling options
    (ccapp.engines.generation.sampling_options), so no job spells them out again."""
    return resolve_sampling(
        max_new_tokens=options.max_new_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        top_k=options.top_k,
        repetition_penalty=options.repetition_penalty,
        model=model,
    )


def stored_sampling(config: dict[str, Any], options: Any) -> Sampling:
    """The Sampling a stored run used (`config` is the run's stored config, `options` the
    job config it resumes with): its recorded values, or for a run stored before settings
    were resolved, temperature and top-p alone (as it was sampled)."""
    record = config.get("sampling_resolved") or {}
    return Sampling(
        options.max_new_tokens,
        options.temperature,
        options.top_p,
        int(record.get("top_k", LEGACY["top_k"])),
        float(record.get("repetition_penalty", LEGACY["repetition_penalty"])),
    )


def record_server_refused(store: Any, run_id: int, fields: tuple[str, ...]) -> None:
    """Note in the run that its server sampled without these fields (once)."""
    from ccapp.store import runs

    record = dict(runs.get_run(store, run_id).config.get("sampling_resolved") or {})
    if record.get("server_refused") == list(fields):
        return
    record["server_refused"] = list(fields)
    runs.update_config(store, run_id, {"sampling_resolved": record})


def batch_seed(seed: int, index: int) -> int:
    """The seed of a run's batch `index`: a resumed run re-samples each batch exactly, and
    C2-Eval and C2-Syn derive their batches' seeds the same way."""
    digest = hashlib.sha256(f"ccapp-batch:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:6], "big")
