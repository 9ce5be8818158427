"""Judge specs (`--judge`) to judge objects, with the API key checks that must come first.

heuristic                 offline, instant (ccapp.engines.judges.heuristic)
gpt-4o, openai:NAME       the OpenAI API; key from OPENAI_API_KEY or [openai] api_key_file
openai:NAME@URL           any OpenAI-compatible server (vLLM, llama.cpp, Ollama, TGI, …)
hf:PATH_OR_ID             a local causal LM, scored on P(yes) vs P(no)
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ccapp.engines.judges.base import Judge
from ccapp.errors import UserError

if TYPE_CHECKING:
    from ccapp.engines.judges.openai_batch import BatchSettings

FORMS = "heuristic, gpt-4o, openai:NAME, openai:NAME@URL or hf:PATH_OR_ID"


@dataclass(frozen=True)
class JudgeSpec:
    kind: str  # heuristic | openai | hf
    name: str  # model name or path ("" for heuristic)
    url: str | None = None

    @property
    def canonical(self) -> str:
        """The judge's id in the store: how verdicts, metrics and caches name it."""
        if self.kind == "heuristic":
            return "heuristic"
        if self.kind == "openai":
            return f"openai:{self.name}" + (f"@{self.url}" if self.url else "")
        return f"hf:{self.name}"


@dataclass(frozen=True)
class JudgeOptions:
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 5
    device: str = "auto"
    dtype: str = "auto"
    max_tokens: int | None = None  # an API judge's answer budget; None: by model (3, or 1024)
    batch: BatchSettings | None = None  # an OpenAI judge judges stored runs via the Batch API


def parse_judge_spec(text: str, option: str = "--judge") -> JudgeSpec:
    """`option` is the flag the spec came from, so that the message names what to change."""
    spec = text.strip()
    if spec == "heuristic":
        return JudgeSpec("heuristic", "")
    if spec.startswith("gpt-"):
        return JudgeSpec("openai", spec)
    if spec.startswith("openai:"):
        body = spec.removeprefix("openai:")
        name, _, url = body.partition("@")
        if not name:
            raise UserError(
                f"no model name in judge '{spec}'",
                where=option,
                fix="write openai:NAME or openai:NAME@URL, e.g. openai:gpt-4o",
            )
        if url and not url.startswith(("http://", "https://")):
            raise UserError(
                f"'{url}' is not an http(s) URL",
                where=option,
                fix="write openai:NAME@http://host:port/v1",
            )
        return JudgeSpec("openai", name, url.rstrip("/") or None)
    if spec.startswith("hf:") and spec.removeprefix("hf:").strip():
        return JudgeSpec("hf", spec.removeprefix("hf:").strip())
    raise UserError(f"unknown judge '{text}'", where=option, fix=f"use {FORMS}")


def check_judge_spec(text: str, option: str = "--judge") -> str:
    """Validate `--judge` cheaply (no network, no model); returns the canonical id."""
    return parse_judge_spec(text, option).canonical


def make_judge(text: str, options: JudgeOptions | None = None, *, check: bool = True) -> Judge:
    """The judge for `text`; with `check`, refuse now what would fail after hours of work."""
    options = options or JudgeOptions()
    spec = parse_judge_spec(text)
    if options.batch is not None and spec.kind != "openai":
        raise UserError(
            f"the judge '{spec.canonical}' has no Batch API",
            where="--judge-batch",
            fix="use it with an OpenAI judge (gpt-4o, openai:NAME[@URL]), or leave it out",
        )
    if spec.kind == "heuristic":
        from ccapp.engines.judges.heuristic import HeuristicJudge

        return HeuristicJudge()
    if spec.kind == "openai":
        from ccapp.engines.judges.openai_judge import OpenAIJudge

        judge = OpenAIJudge(
            spec.canonical,
            spec.name,
            base_url=spec.url,
            api_key=api_key_for(spec),
            concurrency=options.concurrency,
            timeout_s=options.timeout_s,
            max_retries=options.max_retries,
            max_tokens=options.max_tokens,
            batch=options.batch,
        )
        if check:
            judge.check()
        return judge
    from ccapp.engines.generation.models import load_model, resolve_model
    from ccapp.engines.judges.hf_judge import HFJudge

    try:
        ref = resolve_model(spec.name)
        loaded = load_model(ref, device=options.device, dtype=options.dtype)
    except UserError as exc:
        if exc.where in (None, "--model"):  # the model is the judge's, not the run's --model
            exc.where = f"judge {spec.canonical}"
        raise
    return HFJudge(
        spec.canonical,
        loaded.model,
        loaded.tokenizer,
        version=f"{model_version(ref.source)}/{loaded.dtype}",
    )


def model_version(source: str) -> str:
    """What identifies the weights behind a name: a local folder's file sizes and times
    (a folder saved again is another judge), or the Hub id as is."""
    import hashlib

    folder = Path(source)
    if not folder.is_dir():
        return source
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*")):
        if path.is_file():
            stat_result = path.stat()
            digest.update(f"{path.name}:{stat_result.st_size}:{stat_result.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def api_key_for(spec: JudgeSpec) -> str:
    """The key, never stored or printed: the environment first, then the key file."""
    if spec.url is not None:  # a self-hosted server gets its own key, never the OpenAI one
        return os.environ.get("CCAPP_JUDGE_API_KEY") or "none"
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if key:
        return key
    from ccapp.config import load_settings

    key_file = load_settings().openai_api_key_file
    if key_file is not None:
        return read_key_file(key_file)
    raise UserError(
        f"no API key for the judge '{spec.canonical}'",
        where="--judge",
        fix="export OPENAI_API_KEY=…, or put the key in a file (chmod 600) named by "
        "[openai] api_key_file in config.toml",
    )


def read_key_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problem, fix = (
            f"cannot read the API key file ({exc.strerror})",
            "check [openai] api_key_file",
        )
        raise UserError(problem, where=str(path), fix=f"{fix} in config.toml") from None
    if not key:
        raise UserError("the API key file is empty", where=str(path), fix="write the key into it")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"ccapp: warning: {path} is readable by other users; run: chmod 600 {path}",
            file=sys.stderr,
        )
    return key
