"""Provenance: what a run's numbers rest on, stored with the run when its work starts.

A Corr@k is only reproducible with the exact weights, data, library versions, device and
sampling it came from. `record` gathers them once the model is loaded (that is when a Hub
model's snapshot is known) and merges them into the run's stored config under
`provenance`; the report's header carries them, and so every export made from it.

- model: the revision that pins the weights — the Hub commit of the snapshot read (from
  Hugging Face's cache, no network), a GGUF file's sha256, or `local-sha256:` of a local
  folder (ccapp.engines.generation.models.local_revision);
- dataset: the file's sha256, a Hub dataset's commit when its cache has it, a pairs
  folder's sha256, or the syn run the pairs came from;
- versions of the stack (importlib.metadata: nothing heavy is imported for it), the device,
  and the resolved sampling settings.

A resumed run may run elsewhere: when what is found then differs from what was stored, the
earlier record is kept in `provenance_earlier` and the new one replaces it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ccapp import __version__
from ccapp.store import Run, RunKind, Store, runs

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "huggingface_hub")
HUB_DATASET = re.compile(r"^([\w.-]+/[\w.-]+)(?:\[[^\]]*\]|:[\w.-]+)?$")  # org/name[split]
SYN_RUN = re.compile(r"^(?:run )?(\d+)$")


def record(store: Store, run: Run) -> Run:
    """Store the run's provenance now (the model is loaded), keeping an earlier, different
    one; a Hub model's commit also fills the run's `model_revision` when it had none."""
    found = collect(run)
    changes: dict[str, Any] = {"provenance": found}
    earlier = run.config.get("provenance")
    if earlier and _without_time(earlier) != _without_time(found):
        changes["provenance_earlier"] = [*run.config.get("provenance_earlier", []), earlier]
    if not run.config.get("model_revision") and found["model"]["revision"]:
        changes["model_revision"] = found["model"]["revision"]
    return runs.update_config(store, run.id, changes)


def _without_time(provenance: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in provenance.items() if k != "recorded_at"}


def collect(run: Run) -> dict[str, Any]:
    """The provenance of `run` as found on this machine now."""
    config = run.config
    return {
        "model": model_provenance(run.model, config),
        "dataset": dataset_provenance(run),
        "versions": versions(),
        "device": device_provenance(config),
        "sampling": config.get("sampling_resolved"),
        "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def model_provenance(spec: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The model as typed, where it was read from, and its revision (for an adapter, its
    base model's too: the adapter alone does not pin the weights)."""
    source = str(config.get("model_source") or spec)
    out: dict[str, Any] = {
        "spec": spec,
        "source": source,
        "revision": config.get("model_revision") or model_revision(source, config.get("revision")),
    }
    base = _adapter_base(source)
    if base is not None:
        out["base"] = {"source": base, "revision": model_revision(base)}
    return out


def model_revision(source: str, requested: str | None = None) -> str | None:
    """A local folder's `local-sha256:`, or the Hub commit that the cache holds for
    `requested` (default main); None when neither is known."""
    from ccapp.engines.generation.hub import snapshot_commit
    from ccapp.engines.generation.models import local_revision

    folder = Path(source).expanduser()
    if folder.is_dir():
        return local_revision(folder)
    return snapshot_commit(source, requested) if "/" in source else None


def _adapter_base(source: str) -> str | None:
    import json

    config = Path(source).expanduser() / "adapter_config.json"
    try:
        base = json.loads(config.read_text())["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return base if isinstance(base, str) and base else None


def dataset_provenance(run: Run) -> dict[str, Any]:
    """What the run read its requests (eval, syn) or pairs (train) from, and its hash."""
    config = run.config
    if run.kind is RunKind.TRAIN:
        return pairs_provenance(str(config.get("pairs") or run.data))
    out: dict[str, Any] = {
        "spec": run.data,
        "location": config.get("data_location"),
        "sha256": config.get("data_sha256"),
    }
    if config.get("from_run") is not None:
        out["from_run"] = config["from_run"]
    elif out["sha256"] is None:
        out["revision"] = hub_dataset_revision(str(out["location"] or run.data))
    return out


def pairs_provenance(spec: str) -> dict[str, Any]:
    """A train run's pairs: the syn run they came from, a folder's or file's sha256, or a
    Hub dataset's commit."""
    out: dict[str, Any] = {"spec": spec}
    path = Path(spec).expanduser()
    if path.exists():
        out["sha256"] = tree_sha256(path)
    elif SYN_RUN.match(spec):
        out["syn_run"] = int(SYN_RUN.match(spec).group(1))  # type: ignore[union-attr]
    else:
        out["revision"] = hub_dataset_revision(spec)
    return out


def hub_dataset_revision(location: str) -> str | None:
    """The commit of a Hub dataset (`org/name[split]` or `org/name:split`) in the cache."""
    from ccapp.engines.generation.hub import snapshot_commit

    found = HUB_DATASET.match(location)
    return snapshot_commit(found.group(1), repo_type="dataset") if found else None


def tree_sha256(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (relative names and bytes, in name
    order: the same files anywhere give the same hash)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(f"{file.relative_to(path).as_posix()}\0".encode())
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str | None]:
    """ccapp's, Python's and the stack's versions; None for a package not installed."""
    out: dict[str, str | None] = {"ccapp": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_provenance(config: Mapping[str, Any]) -> dict[str, Any]:
    """Where the work ran: the machine, the requested and resolved device, and the GPUs
    used; for the openai engine, the server. torch is asked only when the job already
    imported it (an in-process model), never imported for this."""
    requested = str(config.get("device") or "auto")
    out: dict[str, Any] = {
        "requested": requested,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }
    if config.get("engine") == "openai":
        return out | {"engine": "openai", "server": config.get("base_url")}
    torch = sys.modules.get("torch")
    if torch is None:
        return out
    cuda = bool(torch.cuda.is_available())
    out["resolved"] = ("cuda" if cuda else "cpu") if requested == "auto" else requested
    out["torch_threads"] = torch.get_num_threads()
    if cuda and out["resolved"].startswith("cuda"):
        indices = (
            [int(out["resolved"].split(":")[1])]
            if ":" in out["resolved"]
            else list(range(torch.cuda.device_count()))
        )
        out["cuda"] = torch.version.cuda
        out["gpus"] = [
            {
                "index": i,
                "name": torch.cuda.get_device_name(i),
                "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
            }
            for i in indices
        ]
    return out
