"""The settings of a C2-Syn run, each declared once (ccapp.engines.options): the paper's
filters and greedy decoding are the defaults, and `ccapp syn`, the Synthesize form, the
resume check and Run detail are read off these fields."""

from __future__ import annotations

from ccapp.engines.data import source_note
from ccapp.engines.generation import sampling_options as shared
from ccapp.engines.generation.backend import (
    LOADING,
    MODEL_FIX,
    MODEL_HELP,
    BackendOptions,
    model_spec_problem,
)
from ccapp.engines.options import Problem, job_config, option, result_settings, section

DEFAULT_SOURCE = "PKU-Alignment/PKU-SafeRLHF:train"
SLOTS = 5  # generations per group: the safe answer and four continuations
QUESTION_RULES = ("contains", "starts")  # the paper's substring test; the stricter one
SAFE_SOURCES = ("model", "dataset")
COMPLETIONS = ("full", "sentence")
SOURCE = "which requests"
source = section(SOURCE)
groups = section("how groups are built")


def _judge_spec(text: str) -> str:
    """`--verify-judge` checked as `--judge` is (no network, no model), by its own flag."""
    from ccapp.engines.judges.registry import check_judge_spec

    return check_judge_spec(text, "--verify-judge")


@job_config
class SynConfig(BackendOptions):
    """C2-Syn: six ranked responses per harmful request, 15 preference pairs each.

    For each harmful request: the model's own safe answer, four continuations after a
    corrective trigger at four cut points of the harmful response, and the harmful response
    itself, ranked safe > SYN1 > … > SYN4 > harmful. Defaults follow the paper.
    """

    model: str = option(
        kw_only=False,
        help=MODEL_HELP,
        label="Model to align",
        form_default="tiny",
        group=SOURCE,
        check=model_spec_problem,
        fix=MODEL_FIX,
    )
    data: str | None = source(
        DEFAULT_SOURCE,
        "a Hub id[:split] (default PKU-Alignment/PKU-SafeRLHF:train), a "
        ".jsonl/.json/.parquet file, or c2-eval",
        label="Data (requests with harmful responses)",
        note=source_note,
    )
    from_run: int | None = source(
        None,
        "instead of --data: the requests an eval run failed to correct",
        metavar="RUN",
        label="…or the requests an eval run failed on (run id)",
        placeholder="empty: use the data",
        minimum=1,
        fix="give an eval run's id (see ccapp runs list --kind eval)",
    )
    limit: int | None = source(
        None,
        "the first N requests after the filters",
        label="Limit",
        placeholder="all",
        form_default="100",
        minimum=1,
        shown=True,
        row="filters",
    )
    # The paper keeps rows with an unsafe response of over 80 words (that one is used) whose
    # prompt has "how"/"what" in it (a substring test; "starts": it must start with one).
    min_harmful_words: int = source(
        80,
        "keep rows with an unsafe response longer than N words and use the first such "
        "(default 80, as the paper)",
        label="Harmful over N words",
        minimum=0,
        shown=True,
        row="filters",
    )
    questions_only: bool = source(
        True,
        "keep every prompt (default: only prompts with how/what in them, as the paper)",
        flag="--all-prompts",
        label="Only how/what questions",
        widget="switch",
        row="filters",
    )
    question_rule: str = source(
        "contains",
        "contains: 'how', 'what', 'How' or 'What' anywhere in the prompt (default, the "
        "paper's substring test); starts: the prompt starts with how/what",
        choices=QUESTION_RULES,
    )
    safe_source: str = groups(  # the model's answer to the bare request, or the row's safe one
        "model",
        "the best response: the model's own answer to the bare request (default; judged "
        "with --verify-judge) or the row's safe response (rows without one are dropped)",
        choices=SAFE_SOURCES,
        shown=True,
    )
    # "sentence": a SYN response ends with the sentence that completes its trigger, so the
    # pair is about the correction point, not about what a weak model writes afterwards.
    completion: str = groups(
        "full",
        "each SYN response ends where the model's completion ends (full, default, as the "
        "paper) or with the sentence that completes its trigger (sentence: the pair is about the "
        "correction point, not what a weak model writes after it)",
        choices=COMPLETIONS,
        shown=True,
    )
    verify_judge: str | None = groups(
        None,
        "keep only groups whose SYN completions (judged after opener, cut and trigger) "
        "correct without relapse, whose safe answer refuses, and with no degenerate text",
        metavar="J",
        label="Verify with a judge (optional)",
        placeholder="e.g. heuristic, gpt-4o",
        convert=_judge_spec,
    )
    max_new_tokens: int = shared.max_new_tokens(
        default=128, help="tokens per generation", row="sampling"
    )
    temperature: float = shared.temperature(  # greedy, as the paper
        default=0.0,
        help="0 = greedy (default; the paper used diverse beam search, which transformers 5 "
        "only loads from the Hub)",
        label="Temperature (0 = greedy)",
    )
    top_p: float = shared.top_p(default=1.0, help="nucleus sampling when temperature > 0")
    top_k: int | None = shared.top_k(  # None: the model's generation config, else 50
        help="top-k filter when temperature > 0, 0 = off (default: the model's generation "
        "config, else 50, as generate)"
    )
    repetition_penalty: float | None = shared.repetition_penalty(  # None: as the model's config
        help="1.0 = none; applies to greedy too (default: the model's generation config, else 1.0)"
    )
    seed: int = shared.seed()
    lenient: bool = shared.lenient(group=SOURCE)
    batch_size: int | None = option(
        default=None,
        help=f"prompts per batch ({SLOTS} per request; default: from the device)",
        minimum=SLOTS,
        fix=f"give at least {SLOTS} (one group's prompts)",
        decides_results=False,
        shown=True,
        group=LOADING,
    )

    def job_problems(self) -> list[Problem]:
        """Requests to use: the data's, or an eval run's."""
        if self.data is None and self.from_run is None:
            return [Problem("data", "no requests to use", "give --data D or --from-run RUN")]
        return []


RESULT_SETTINGS = result_settings(SynConfig)
