"""C2-Syn: six ranked responses per harmful request, whose 15 ordered pairs teach correction.

For a request with a harmful response H, the group is, best to worst:

    safe ≻ SYN1 ≻ SYN2 ≻ SYN3 ≻ SYN4 ≻ harmful

`safe` is the model's own answer to the bare request (or, with `safe_source="dataset"`, the
row's safe response). SYN_i is the opener, H cut at the i-th of four evenly spaced
punctuation boundaries, a corrective trigger that is an *open clause* ("but I must warn you
that", "However, I should not help with") and the model's own completion of it — rendered,
like C2-Eval, as an open assistant turn, so what the correction says is the model's own.
`harmful` is the opener and all of H. Earlier corrections rank higher, and correcting beats
not correcting. Groups are committed whole, so a run resumes group by group; the pairs are
derived from the stored groups, never stored 15 times over.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ccapp.engines.c2eval.fluency import distinct2, is_degenerate, words
from ccapp.engines.c2syn.config import RESULT_SETTINGS, SLOTS, SynConfig
from ccapp.engines.events import GroupDone, GroupResponse, Log, ModelLoading, Progress
from ccapp.engines.generation.backend import Backend
from ccapp.engines.generation.sampling import (
    batch_seed,
    resolve_options,
    sampling_record,
    stored_sampling,
)
from ccapp.engines.generation.types import Cancelled
from ccapp.engines.jobs import RunJob
from ccapp.engines.judges.base import Judge, JudgeInput
from ccapp.engines.phrases import (
    OPENERS,
    PHRASES_VERSION,
    TRIGGERS_AFTER_SENTENCE,
    TRIGGERS_IN_SENTENCE,
    pick,
)
from ccapp.errors import UserError
from ccapp.store import RunKind, Store, runs
from ccapp.store import evals as rows_store
from ccapp.store import syn as syn_store
from ccapp.store.records import Item, Run

_PUNCTUATION = re.compile(r"[.,;:!?](?=\s|$)|\n")
_WORD = re.compile(r"\S+")
_QUESTION = re.compile(r"^\s*(how|what)\b", re.IGNORECASE)
PAPER_KEYWORDS = ("how", "what", "How", "What")  # the paper's script, case-sensitive substrings
# A sentence ends at . ! ? before a space (not after a lone capital, as in "U.S.") or at a newline.
_SENTENCE_END = re.compile(r"(?<!\b[A-Z])[.!?](?=[\s\"'’”)\]]|$)|\n")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def cut_points(response: str, count: int = 4) -> list[int] | None:
    """`count` strictly increasing cut offsets inside `response`, or None if it is too short.

    Cuts fall just after punctuation (".", ",", ";", ":", "!", "?" before a space, or a
    line break), chosen evenly among all such boundaries: n boundaries split the text into
    n + 1 pieces, and cut i keeps about i/(count + 1) of the pieces. With fewer than `count`
    boundaries, the cuts fall after evenly spaced words instead. A cut is never at 0 and
    never at the end, so SYN_i always holds some and never all of the harmful response.
    """
    text = response.rstrip()
    words = list(_WORD.finditer(text))
    if len(words) <= count:
        return None
    boundaries = sorted({m.end() for m in _PUNCTUATION.finditer(text) if 0 < m.end() < len(text)})
    boundaries = [b for b in boundaries if text[:b].strip()]
    if len(boundaries) >= count:
        return [boundaries[i] for i in _evenly_spaced(len(boundaries), count)]
    word_ends = [w.end() for w in words[:-1]]  # after the last word is the end: never a cut
    return [word_ends[i] for i in _evenly_spaced(len(word_ends), count)]


def _evenly_spaced(n: int, count: int) -> list[int]:
    """`count` distinct indices into n ≥ count boundaries, the i-th nearest i·(n+1)/(count+1)
    pieces. Neighbouring targets are (n+1)/(count+1) ≥ 1 apart and rounding half up keeps
    that gap, so no two cuts share a boundary (four boundaries: indices 0, 1, 2, 3)."""
    return [(2 * i * (n + 1) + count + 1) // (2 * (count + 1)) - 1 for i in range(1, count + 1)]


def is_question(prompt: str) -> bool:
    """The stricter question rule (`question_rule="starts"`): the prompt starts with how/what."""
    return bool(_QUESTION.match(prompt))


def mentions_how_or_what(prompt: str) -> bool:
    """The paper's question rule: "how", "what", "How" or "What" anywhere in the prompt — a
    case-sensitive substring test, so "show" and "somewhat" pass and "HOW" does not."""
    return any(keyword in prompt for keyword in PAPER_KEYWORDS)


def harmful_to_use(unsafe: Sequence[str], min_words: int) -> str | None:
    """The paper's choice: the first unsafe response (response_0, then response_1) of over
    `min_words` whitespace words; None when neither is that long."""
    return next((text for text in unsafe if len(text.split()) > min_words), None)


Candidate = tuple[int, str, Sequence[str], str | None]  # index, request, unsafe, safe


def filter_requests(
    candidates: Iterable[Candidate], config: SynConfig
) -> tuple[list[tuple[Any, ...]], Counter[str]]:
    """The item rows that pass the filters, and how many rows each filter dropped.

    Defaults are the paper's: the prompt contains how/what (substring) and an unsafe
    response is over 80 words. Rows without a safe response are dropped when the safe
    answer is to come from the data.
    """
    counts: Counter[str] = Counter()
    question = mentions_how_or_what if config.question_rule == "contains" else is_question
    question_drop = (
        "no how/what in the prompt"
        if config.question_rule == "contains"
        else "not a how/what question"
    )
    kept: list[tuple[Any, ...]] = []
    for index, request, unsafe, safe in candidates:
        harmful = harmful_to_use(unsafe, config.min_harmful_words)
        if config.questions_only and not question(request):
            counts[question_drop] += 1
        elif harmful is None:
            counts[f"no unsafe response over {config.min_harmful_words} words"] += 1
        elif cut_points(harmful) is None:
            counts["too short to cut four times"] += 1
        elif config.safe_source == "dataset" and not safe:
            counts["no safe response in the data"] += 1
        else:
            kept.append((index, None, request, harmful, safe))
    if config.limit is not None:
        counts["beyond --limit"] = max(0, len(kept) - config.limit)
        kept = kept[: config.limit]
    counts["kept"] = len(kept)
    return kept, counts


def describe_counts(counts: dict[str, int]) -> str:
    """What the filters kept and dropped, rule by rule, as the run's first log line says."""
    return ", ".join(f"{name}: {n}" for name, n in counts.items() if n)


def ends_sentence(cut_text: str) -> bool:
    """Whether a cut after `cut_text` falls between sentences (after ".", "!", "?" or a line
    break), where a trigger starts a new sentence, rather than inside one (after ",", ";",
    ":" or a word), where it goes on in lower case."""
    if cut_text.rstrip(" \t").endswith("\n"):
        return True
    return cut_text.rstrip().rstrip("\"')]”’").endswith((".", "!", "?"))


@dataclass(frozen=True)
class SynPrefill:
    text: str  # opener + the cut harmful response + the trigger, ending mid-clause
    trigger: str


def syn_prefill(
    opener: str, harmful: str, cut: int, *, seed: int, item: int, slot: int
) -> SynPrefill:
    """SYN_slot's prefill: the trigger's form fits the cut, and after a line break it starts
    a line of its own; which trigger of that form is the seed's choice for this item and slot."""
    cut_text = harmful[:cut]
    options = TRIGGERS_AFTER_SENTENCE if ends_sentence(cut_text) else TRIGGERS_IN_SENTENCE
    trigger = pick(options, seed, "trigger", item, slot)
    between = "\n" if cut_text.rstrip(" \t").endswith("\n") else " "
    return SynPrefill(f"{opener} {cut_text.rstrip()}{between}{trigger}", trigger)


def first_sentence(completion: str) -> str:
    """The completion up to the end of the sentence it finishes (all of it if none ends)."""
    match = _SENTENCE_END.search(completion.lstrip("\n"), 1)
    if match is None:
        return completion
    lead = len(completion) - len(completion.lstrip("\n"))
    return completion[: lead + match.end()].rstrip("\n")


def join_continuation(prefill: str, continuation: str) -> str:
    """The SYN response: the prefill and the model's completion of its open clause. A
    completion that starts with a letter was decoded without its leading space."""
    if continuation[:1].isalnum():
        return f"{prefill} {continuation}"
    return prefill + continuation


def degenerate_reason(text: str) -> str | None:
    """Why a generated text is unusable as a response, or None. A weak model's greedy
    128-token continuation often loops on one sentence; such text must not become a chosen
    answer that DPO learns from."""
    tokens = words(text)
    if not tokens:
        return "empty"
    if is_degenerate(text):  # a word three times in a row, or mostly non-words
        return "broken text"
    sentences = Counter(
        " ".join(words(m.group(0))) for m in _SENTENCE.finditer(text) if len(words(m.group(0))) >= 3
    )
    if sentences and max(sentences.values()) >= 3:
        return "loops on one sentence"
    diversity = distinct2(tokens)
    if len(tokens) >= 24 and diversity is not None and diversity < 0.5:
        return "repeats itself"
    return None


ROLES = ("safe", "syn1", "syn2", "syn3", "syn4")


def review(
    request: str,
    prefills: Sequence[str],
    answers: Sequence[str],
    judge: Judge | None,
    *,
    judge_safe: bool = True,
) -> tuple[str, str | None]:
    """("ok", None) or ("rejected", reason) for a group's generated answers: the safe answer,
    then the model's completions of the four SYN prefills (the trigger excluded).

    Without a judge only an empty safe answer is rejected. With one, no generated text may
    be degenerate, each SYN completion must finish the trigger's open clause (not drop it
    for a new line or end the sentence at once, as a model that goes back to the harm
    does), the judge must see each SYN completion — with opener, cut and trigger as its
    prefill — correcting without relapse, and the safe answer (taken as a continuation of
    nothing) refusing without relapse. A safe answer from the data (`judge_safe=False`)
    carries its annotators' label and is not judged.
    """
    if not answers[0].strip():
        return "rejected", "empty safe response"
    if judge is None:
        return "ok", None
    checked = [i for i in range(len(ROLES)) if i > 0 or judge_safe]
    for i in checked:
        if (why := degenerate_reason(answers[i])) is not None:
            return "rejected", f"{ROLES[i]} degenerate ({why})"
        if i > 0 and answers[i].lstrip(" \t")[:1] in ("\n", ".", "!", "?"):
            return "rejected", f"{ROLES[i]} leaves the trigger unfinished"
    inputs = [JudgeInput(request, "" if i == 0 else prefills[i - 1], answers[i]) for i in checked]
    for i, verdict in zip(checked, judge.judge(inputs)):
        if verdict.label != "yes":
            return "rejected", f"{ROLES[i]} {'does not refuse' if i == 0 else 'does not correct'}"
        if verdict.relapse:
            return "rejected", f"{ROLES[i]} relapses"
    return "ok", None


@dataclass(frozen=True)
class PlannedGroup:
    item: Item
    opener: str
    triggers: list[str]  # one per SYN, of the form its cut needs
    cuts: list[int]
    prefills: list[str]  # the four SYN prefills: opener + cut + trigger
    prompts: list[tuple[int, str]]  # (slot, prompt) to generate: 0 the bare request (unless
    # the safe answer comes from the data), 1-4 the SYN prefills, open


class Synthesis(RunJob[SynConfig]):
    """One C2-Syn run in this process: start a new one or resume a stored one."""

    kind = RunKind.SYN
    config_type = SynConfig
    when_done = "export its pairs, or start a new run"

    def start(self, config: SynConfig, *, parent_id: int | None = None) -> Run:
        """A new run; its parent is the eval run it draws from (--from-run) or `parent_id`."""
        from ccapp.engines.generation.models import resolve_model

        config.check()
        judge = self._make_judge(config)
        rows, source, counts = self._source(config)
        ref = resolve_model(config.model)
        backend = self._load_backend(config, ref)
        if self.cancel.is_set():
            raise Cancelled
        config = replace(config, batch_size=backend.rows_per_batch)
        stored = asdict(config) | {
            "model_source": ref.source,
            "model_revision": ref.revision,
            "data_location": source.get("location"),
            "data_sha256": source.get("sha256"),
            "phrases_version": PHRASES_VERSION,
            "template_source": backend.template_source,
            "source_counts": counts,
            "sampling_resolved": resolve_options(config, backend.generation_defaults)[1],
        }
        identity = {k: stored[k] for k in RESULT_SETTINGS} | {
            "model_source": ref.source,
            "data_sha256": source.get("sha256"),
            "phrases_version": PHRASES_VERSION,
            "sampling": sampling_record(stored_sampling(stored, config)),
        }
        with self.store.write():
            self.run = runs.create_run(
                self.store,
                RunKind.SYN,
                stored,
                model=config.model,
                data=config.data or f"run {config.from_run}",
                judge=config.verify_judge or "",
                parent_id=config.from_run if config.from_run is not None else parent_id,
                identity=identity,
            )
            rows_store.insert_items(self.store, self.run.id, rows)
        self.sink.emit(Log(level="info", message=describe_counts(counts)))
        with self._recording():
            return self._execute(config, backend, judge)

    def resume(self, run_id: int, overrides: dict[str, Any]) -> Run:
        from ccapp.engines.generation.models import resolve_model

        run, config = self._reopen(run_id)
        made_with = run.config.get("phrases_version", 1)
        if made_with != PHRASES_VERSION:
            raise UserError(
                f"run {run_id} was made with ccapp's phrases version {made_with} (openers and "
                f"triggers); this ccapp has version {PHRASES_VERSION}, so its groups would differ",
                fix="start a new run, or finish this one with the ccapp version that began it",
            )
        config = self._keep_settings(run_id, config, overrides)
        judge = self._make_judge(config)
        self._claim(run_id)
        with self._recording():
            backend = self._load_backend(config, resolve_model(run.config["model_source"]))
            return self._execute(config, backend, judge)

    # -- sources --------------------------------------------------------------------------

    def _source(
        self, config: SynConfig
    ) -> tuple[list[tuple[Any, ...]], dict[str, Any], dict[str, int]]:
        """Item rows for the run, where they came from, and what the filters kept."""
        counts: Counter[str] = Counter()
        if config.from_run is not None:
            candidates: list[Candidate] = [
                (idx, request, (harmful,), safe)
                for idx, request, harmful, safe in failed_requests(self.store, config.from_run)
            ]
            source: dict[str, Any] = {"location": f"run {config.from_run}", "sha256": None}
            counts["source"] = len(candidates)
        else:
            from ccapp.engines.data import load_dataset_rows

            assert config.data is not None
            dataset = load_dataset_rows(config.data, lenient=config.lenient)
            candidates = [
                (r.index, r.request, r.unsafe_responses or (r.harmful_response,), r.safe_response)
                for r in dataset.rows
            ]
            source = {"location": dataset.location, "sha256": dataset.sha256}
            counts["source"] = len(candidates)
            for reason, n in dataset.skipped.items():
                counts[f"skipped: {reason}"] += n
        kept, dropped = filter_requests(candidates, config)
        counts.update(dropped)
        if not kept:
            raise UserError(
                f"no request is left after the filters ({describe_counts(dict(counts))})",
                where="--data",
                fix="loosen --min-harmful-words or pass --all-prompts, or use other data",
            )
        return kept, source, dict(counts)

    # -- the work -------------------------------------------------------------------------

    def _make_judge(self, config: SynConfig) -> Judge | None:
        if not config.verify_judge:
            return None
        from ccapp.engines.judges.registry import JudgeOptions, make_judge

        return make_judge(
            config.verify_judge, JudgeOptions(device=config.device, dtype=config.dtype)
        )

    def _load_backend(self, config: SynConfig, ref: Any) -> Backend:
        self.sink.emit(ModelLoading(phase="resolve", detail=ref.source))
        return Backend.load(ref, self.sink, config, min_rows=SLOTS)

    def plan(
        self, config: SynConfig, items: Sequence[Item], backend: Backend
    ) -> list[PlannedGroup]:
        from ccapp.engines.generation.render import render_prompt

        planned = []
        for item in items:
            cuts = cut_points(item.harmful_response)
            assert cuts is not None  # filtered when the run was made
            opener = pick(OPENERS, config.seed, "opener", item.idx)
            harmful = item.harmful_response.rstrip()
            syn = [
                syn_prefill(opener, harmful, cut, seed=config.seed, item=item.idx, slot=slot)
                for slot, cut in enumerate(cuts, start=1)
            ]
            prefills = [p.text for p in syn]
            prompts = [
                (slot, render_prompt(backend.tokenizer, item.request, p, model_name=config.model))
                for slot, p in enumerate(prefills, start=1)
            ]
            if config.safe_source == "model":
                safe_prompt = backend.tokenizer.apply_chat_template(
                    [{"role": "user", "content": item.request}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                prompts.insert(0, (0, str(safe_prompt)))
            triggers = [p.trigger for p in syn]
            planned.append(PlannedGroup(item, opener, triggers, cuts, prefills, prompts))
        return planned

    def _execute(self, config: SynConfig, backend: Backend, judge: Judge | None) -> Run:
        run_id = self._run_id
        items = rows_store.get_items(self.store, run_id)
        planned = self.plan(config, items, backend)
        done = syn_store.done_items(self.store, run_id)
        per_batch = max(1, backend.rows_per_batch // SLOTS)
        batches = [planned[i : i + per_batch] for i in range(0, len(planned), per_batch)]
        self._started(
            {"requests": len(planned), "groups": len(planned), "todo": len(planned) - len(done)}
        )
        # The run's resolved settings; a run stored before they were resolved, as it sampled.
        sampling = stored_sampling(self.run.config if self.run else {}, config)
        started, made = time.monotonic(), 0
        for index, batch in enumerate(batches):
            if all(group.item.id in done for group in batch):
                continue
            if self.cancel.is_set():
                raise Cancelled
            prompts = [
                (position * SLOTS + slot, prompt, (0,))
                for position, group in enumerate(batch)
                for slot, prompt in group.prompts
            ]
            generated = backend.generate(
                prompts, sampling, batch_seed(config.seed, index), self.sink, self.cancel
            )
            texts = {g.key: g.text for g in generated}
            for position, group in enumerate(batch):
                if group.item.id in done:
                    continue
                answers = [
                    texts[position * SLOTS + slot]
                    if slot or config.safe_source == "model"
                    else group.item.safe_response or ""
                    for slot in range(SLOTS)
                ]
                self._save(
                    group,
                    answers,
                    judge,
                    judge_safe=config.safe_source == "model",
                    completion=config.completion,
                )
                done.add(group.item.id)
                made += 1
            rate = made / max(time.monotonic() - started, 1e-9)
            left = len(planned) - len(done)
            self.sink.emit(
                Progress(
                    done=len(done),
                    total=len(planned),
                    rate=round(rate, 3),
                    eta_s=round(left / rate, 1) if rate > 0 else None,
                )
            )
        return self._finish(self._metrics())

    def _save(
        self,
        group: PlannedGroup,
        answers: list[str],
        judge: Judge | None,
        *,
        judge_safe: bool,
        completion: str = "full",
    ) -> None:
        """Rank the six responses, verify them if asked, and commit the group."""
        item = group.item
        if completion == "sentence":
            answers = [answers[0], *(first_sentence(a) for a in answers[1:])]
        responses = [syn_store.Response(0, "safe", answers[0].strip())]
        for i, (prefill, cut, trigger) in enumerate(
            zip(group.prefills, group.cuts, group.triggers), start=1
        ):
            text = join_continuation(prefill, answers[i])
            responses.append(syn_store.Response(i, f"syn{i}", text, cut, trigger))
        responses.append(
            syn_store.Response(5, "harmful", f"{group.opener} {item.harmful_response.rstrip()}")
        )
        status, reason = review(item.request, group.prefills, answers, judge, judge_safe=judge_safe)
        syn_store.save_group(self.store, self._run_id, item.id, status, reason, responses)
        self.sink.emit(
            GroupDone(
                item=item.idx,
                request=item.request,
                status=status,
                reason=reason,
                responses=tuple(GroupResponse.like(r) for r in responses),
            )
        )

    def _metrics(self) -> dict[str, Any]:
        counted = syn_store.counts(self.store, self._run_id)
        run = runs.get_run(self.store, self._run_id)
        return {
            "groups": counted["ok"],
            "rejected": counted["rejected"],
            "pairs": syn_store.pair_count(self.store, self._run_id),
            "rejection_reasons": syn_store.rejection_reasons(self.store, self._run_id),
            "source": run.config.get("source_counts", {}),
        }


def failed_requests(store: Store, eval_run_id: int) -> list[tuple[int, str, str, str | None]]:
    """Requests of an eval run on which the model failed to course-correct, most failures first.

    A request counts when its run judge said "no" for at least one path at any k.
    """
    run = runs.get_run(store, eval_run_id)
    if run.kind is not RunKind.EVAL:
        raise UserError(
            f"run {eval_run_id} is {run.kind.a_run}",
            where="--from-run",
            fix="give an eval run (see ccapp runs list --kind eval)",
        )
    failures: Counter[int] = Counter()
    for item_idx, _k, label, *_ in rows_store.judged(store, eval_run_id, run.judge):
        if label == "no":
            failures[item_idx] += 1
    items = {item.idx: item for item in rows_store.get_items(store, eval_run_id)}
    order = sorted(failures, key=lambda idx: (-failures[idx], idx))
    return [
        (idx, items[idx].request, items[idx].harmful_response, items[idx].safe_response)
        for idx in order
    ]
