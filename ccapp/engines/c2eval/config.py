"""The settings of a C2-Eval run, each declared once (ccapp.engines.options): the paper's
settings are the defaults, and `ccapp eval`, the New evaluation form, the resume check and
Run detail are read off these fields."""

from __future__ import annotations

from ccapp.engines.c2eval.prefill import UNITS
from ccapp.engines.data import source_note
from ccapp.engines.generation import sampling_options as shared
from ccapp.engines.generation.backend import (
    MODEL_FIX,
    MODEL_HELP,
    BackendOptions,
    model_spec_problem,
)
from ccapp.engines.options import (
    Problem,
    format_shown,
    job_config,
    option,
    result_settings,
    section,
)

DEFAULT_KS = (10, 20, 30, 40, 50, 60, 70, 80)
WHAT = "what is evaluated"
what = section(WHAT)
judging = section("judging")


@job_config
class EvalConfig(BackendOptions):
    """C2-Eval: prefill harmful answers, sample continuations, judge, Corr@k.

    Prefill the model's answer with the start of a harmful response (cut at k words), sample
    paths, judge whether each path course-corrects, and report Corr@k with 95% bootstrap
    intervals. Defaults are the paper's.
    """

    model: str = option(
        kw_only=False,
        help=MODEL_HELP,
        label="Model",
        form_default="tiny",
        group=WHAT,
        check=model_spec_problem,
        fix=MODEL_FIX,
    )
    data: str = option(
        kw_only=False,
        help="c2-eval, a .jsonl/.json/.parquet file, or a Hub id[:split]",
        label="Data",
        placeholder="c2-eval, a file or a Hub id",
        form_default="c2-eval",
        note=source_note,
        group=WHAT,
    )
    ks: tuple[int, ...] = what(
        DEFAULT_KS,
        "prefix lengths",
        flag="--k",
        metavar="K,K,…",
        label="k (prefix words)",
        minimum=1,
        fix="give positive numbers, e.g. --k 10,20,40",
        shown=True,
    )
    paths: int = shared.sampling(
        20,
        "continuation paths per (request, k)",
        metavar="B",
        label="Paths",
        minimum=1,
        shown=True,
        row="how much",
    )
    max_new_tokens: int = shared.max_new_tokens(default=32, help="tokens per path", row="how much")
    temperature: float = shared.temperature(
        default=0.8, help="sampling temperature; 0 = greedy", label="Temperature"
    )
    top_p: float = shared.top_p(default=0.7, help="nucleus sampling", label="top_p", row="sampling")
    top_k: int | None = shared.top_k(
        help="top-k filter, 0 = off (default: the model's generation config, else 50, as generate)"
    )
    repetition_penalty: float | None = shared.repetition_penalty(
        help="1.0 = none (default: the model's generation config, else 1.0, as generate)"
    )
    seed: int = shared.seed(label="Seed", row="sampling")
    limit: int | None = what(
        None,
        "only the first N requests",
        label="Limit",
        placeholder="all",
        minimum=1,
        shown=True,
        row="how much",
    )
    unit: str = what("words", "what k counts", choices=UNITS, shown=True)
    judge: str = judging(
        "heuristic", "heuristic (default), gpt-4o, openai:NAME, openai:NAME@URL, hf:PATH_OR_ID"
    )
    judge_concurrency: int = judging(
        8, "parallel requests to an API judge", minimum=1, decides_results=False
    )
    judge_max_tokens: int | None = judging(
        None,
        "tokens an API judge may spend on an answer (default 3; 1024 for reasoning "
        "models, o1/o3/o4/gpt-5, which think before they answer)",
        minimum=1,
        decides_results=False,
    )
    judge_batch: bool = judging(
        False,
        "judge through OpenAI's Batch API once generation is done: half the price, results "
        "within 24 h; a killed run resumes the same batch",
        decides_results=False,
    )
    lenient: bool = shared.lenient(group=WHAT)

    def job_problems(self) -> list[Problem]:
        """Each prefix length given once."""
        if self.ks and len(set(self.ks)) != len(self.ks):
            return [
                Problem(
                    "ks", f"invalid value {format_shown(self.ks)}", "give each prefix length once"
                )
            ]
        return []


# Settings that decide what a run produces; resuming with another value is refused.
RESULT_SETTINGS = result_settings(EvalConfig)
