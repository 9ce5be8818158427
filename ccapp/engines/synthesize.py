"""C2-Syn: six ranked responses per harmful request, whose 15 ordered pairs teach correction.

For a request with a harmful response H, the group is, best to worst:

    safe ≻ SYN1 ≻ SYN2 ≻ SYN3 ≻ SYN4 ≻ harmful

`safe` is the model's own answer to the bare request. SYN_i is the opener, H cut at the i-th
of four evenly spaced punctuation boundaries, a corrective trigger ("However, I cannot
continue with this.") and the model's own continuation after it — rendered, like C2-Eval,
as an open assistant turn. `harmful` is the opener and all of H. Earlier corrections rank
higher, and correcting beats not correcting. Groups are committed whole, so a run resumes
group by group; the pairs are derived from the stored groups, never stored 15 times over.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ccapp.engines.backend import Backend, BackendOptions
from ccapp.engines.evaluate import batch_seed, option_name
from ccapp.engines.events import EVENTS_VERSION, NullSink, Sink
from ccapp.engines.hf_generate import Cancelled, Sampling
from ccapp.engines.judges.base import Judge, JudgeInput
from ccapp.engines.phrases import OPENERS, PHRASES_VERSION, TRIGGERS, pick
from ccapp.errors import UserError
from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store import evals as rows_store
from ccapp.store import syn as syn_store
from ccapp.store.records import Item, Run

DEFAULT_SOURCE = "PKU-Alignment/PKU-SafeRLHF:train"
SLOTS = 5  # generations per group: the safe answer and four continuations
_PUNCTUATION = re.compile(r"[.,;:!?](?=\s|$)|\n")
_WORD = re.compile(r"\S+")
_QUESTION = re.compile(r"^\s*(how|what)\b", re.IGNORECASE)


@dataclass(frozen=True)
class SynConfig:
    model: str
    data: str | None = DEFAULT_SOURCE
    from_run: int | None = None
    limit: int | None = None
    questions_only: bool = True  # the paper keeps "how"/"what" questions
    min_harmful_words: int = 80  # … whose unsafe response is over 80 words
    max_new_tokens: int = 128
    temperature: float = 0.0  # greedy, as the paper
    top_p: float = 1.0
    seed: int = 0
    verify_judge: str | None = None
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
    lenient: bool = False

    def check(self) -> None:
        problems = [
            (
                self.data is None and self.from_run is None,
                "--data",
                "give --data D or --from-run RUN",
            ),
            (self.limit is not None and self.limit < 1, "--limit", "give at least 1"),
            (self.min_harmful_words < 0, "--min-harmful-words", "give 0 or more"),
            (self.max_new_tokens < 1, "--max-new-tokens", "give at least 1"),
            (
                not math.isfinite(self.temperature) or self.temperature < 0,  # NaN fails no `<`
                "--temperature",
                "use 0 (greedy) or more",
            ),
            (not 0 < self.top_p <= 1, "--top-p", "use a value in (0, 1]"),
            (self.engine not in ("hf", "openai"), "--engine", "use hf or openai"),
            (
                self.engine == "openai" and not self.base_url,
                "--base-url",
                "the openai engine needs the server's URL",
            ),
            (
                self.batch_size is not None and self.batch_size < SLOTS,
                "--batch-size",
                f"give at least {SLOTS} (one group's prompts)",
            ),
        ]
        for bad, option, fix in problems:
            if bad:
                raise UserError("invalid value", where=option, fix=fix)


RESULT_SETTINGS = (
    "model",
    "data",
    "from_run",
    "limit",
    "questions_only",
    "min_harmful_words",
    "max_new_tokens",
    "temperature",
    "top_p",
    "seed",
    "verify_judge",
    "engine",
    "dtype",
    "load_in_4bit",
    "served_model",
)


def cut_points(response: str, count: int = 4) -> list[int] | None:
    """`count` strictly increasing cut offsets inside `response`, or None if it is too short.

    Cuts fall just after punctuation (".", ",", ";", ":", "!", "?" before a space, or a
    line break), chosen evenly among all such boundaries. With fewer than `count` of them,
    the cuts fall after evenly spaced words instead. A cut is never at 0 and never at the
    end, so SYN_i always holds some and never all of the harmful response.
    """
    text = response.rstrip()
    words = list(_WORD.finditer(text))
    if len(words) <= count:
        return None
    boundaries = sorted({m.end() for m in _PUNCTUATION.finditer(text) if 0 < m.end() < len(text)})
    boundaries = [b for b in boundaries if text[:b].strip()]
    if len(boundaries) >= count:
        step = len(boundaries) / (count + 1)
        picked = [
            boundaries[min(len(boundaries) - 1, round(step * (i + 1)) - 1)] for i in range(count)
        ]
        if len(set(picked)) == count:
            return picked
    step = len(words) / (count + 1)
    return [words[max(0, round(step * (i + 1)) - 1)].end() for i in range(count)]


def is_question(prompt: str) -> bool:
    return bool(_QUESTION.match(prompt))


@dataclass(frozen=True)
class PlannedGroup:
    item: Item
    opener: str
    trigger: str
    cuts: list[int]
    prefills: list[str]  # the four SYN prefills: opener + cut + trigger
    prompts: list[str]  # slot 0: the bare request; slots 1-4: the SYN prefills, open


class Synthesis:
    """One C2-Syn run in this process: start a new one or resume a stored one."""

    def __init__(
        self, store: Store, sink: Sink | None = None, cancel: threading.Event | None = None
    ):
        self.store = store
        self.sink = sink or NullSink()
        self.cancel = cancel or threading.Event()
        self.run: Run | None = None

    def start(self, config: SynConfig, *, parent_id: int | None = None) -> Run:
        """A new run; its parent is the eval run it draws from (--from-run) or `parent_id`."""
        from ccapp.engines.models import resolve_model

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
            "data_location": source.get("location"),
            "data_sha256": source.get("sha256"),
            "phrases_version": PHRASES_VERSION,
            "template_source": backend.template_source,
            "source_counts": counts,
        }
        identity = {k: stored[k] for k in RESULT_SETTINGS} | {
            "model_source": ref.source,
            "data_sha256": source.get("sha256"),
            "phrases_version": PHRASES_VERSION,
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
        self.sink.emit("log", level="info", message=_describe_counts(counts))
        try:
            return self._execute(config, backend, judge)
        except BaseException as exc:
            self._record_end(exc)
            raise

    def resume(self, run_id: int, overrides: dict[str, Any]) -> Run:
        from ccapp.engines.models import resolve_model

        run = runs.resumable_run(
            self.store, run_id, RunKind.SYN, when_done="export its pairs, or start a new run"
        )
        names = {f.name for f in fields(SynConfig)}
        config = SynConfig(**{k: v for k, v in run.config.items() if k in names})
        differing = [
            f"{option_name(name)} (run: {getattr(config, name)}, given: {value})"
            for name, value in overrides.items()
            if name in RESULT_SETTINGS and value != getattr(config, name)
        ]
        if differing:
            raise UserError(
                f"run {run_id} was started with other settings: {'; '.join(differing)}",
                fix="resume without those options, or start a new run",
            )
        config = replace(config, **{k: v for k, v in overrides.items() if k not in RESULT_SETTINGS})
        judge = self._make_judge(config)
        runs.claim(self.store, run_id)
        self.run = runs.get_run(self.store, run_id)
        try:
            backend = self._load_backend(config, resolve_model(run.config["model_source"]))
            return self._execute(config, backend, judge)
        except BaseException as exc:
            self._record_end(exc)
            raise

    # -- sources --------------------------------------------------------------------------

    def _source(
        self, config: SynConfig
    ) -> tuple[list[tuple[Any, ...]], dict[str, Any], dict[str, int]]:
        """Item rows for the run, where they came from, and what the filters kept."""
        counts: Counter[str] = Counter()
        if config.from_run is not None:
            candidates = failed_requests(self.store, config.from_run)
            source: dict[str, Any] = {"location": f"run {config.from_run}", "sha256": None}
            counts["source"] = len(candidates)
        else:
            from ccapp.engines.data import load_dataset_rows

            assert config.data is not None
            dataset = load_dataset_rows(config.data, lenient=config.lenient)
            candidates = [
                (r.index, r.request, r.harmful_response, r.safe_response) for r in dataset.rows
            ]
            source = {"location": dataset.location, "sha256": dataset.sha256}
            counts["source"] = len(candidates)
            for reason, n in dataset.skipped.items():
                counts[f"skipped: {reason}"] += n
        kept = []
        for index, request, harmful, safe in candidates:
            if config.questions_only and not is_question(request):
                counts["not a how/what question"] += 1
            elif len(harmful.split()) <= config.min_harmful_words:
                counts[f"harmful response of {config.min_harmful_words} words or fewer"] += 1
            elif cut_points(harmful) is None:
                counts["too short to cut four times"] += 1
            else:
                kept.append((index, None, request, harmful, safe))
        if config.limit is not None:
            counts["beyond --limit"] = max(0, len(kept) - config.limit)
            kept = kept[: config.limit]
        counts["kept"] = len(kept)
        if not kept:
            raise UserError(
                f"no request is left after the filters ({_describe_counts(dict(counts))})",
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
        self.sink.emit("model_loading", phase="resolve", detail=ref.source)
        return Backend.load(ref, self.sink, BackendOptions.of(config, min_rows=SLOTS))

    def plan(
        self, config: SynConfig, items: Sequence[Item], backend: Backend
    ) -> list[PlannedGroup]:
        from ccapp.engines.render import render_prompt

        planned = []
        for item in items:
            cuts = cut_points(item.harmful_response)
            assert cuts is not None  # filtered when the run was made
            opener = pick(OPENERS, config.seed, "opener", item.idx)
            trigger = pick(TRIGGERS, config.seed, "trigger", item.idx)
            harmful = item.harmful_response.rstrip()
            prefills = [f"{opener} {harmful[:cut].rstrip()} {trigger}" for cut in cuts]
            safe_prompt = backend.tokenizer.apply_chat_template(
                [{"role": "user", "content": item.request}],
                tokenize=False,
                add_generation_prompt=True,
            )
            prompts = [str(safe_prompt)] + [
                render_prompt(backend.tokenizer, item.request, p, model_name=config.model)
                for p in prefills
            ]
            planned.append(PlannedGroup(item, opener, trigger, cuts, prefills, prompts))
        return planned

    def _execute(self, config: SynConfig, backend: Backend, judge: Judge | None) -> Run:
        run_id = self._run_id
        items = rows_store.get_items(self.store, run_id)
        planned = self.plan(config, items, backend)
        done = syn_store.done_items(self.store, run_id)
        per_batch = max(1, backend.rows_per_batch // SLOTS)
        batches = [planned[i : i + per_batch] for i in range(0, len(planned), per_batch)]
        self.sink.emit(
            "run_started",
            v=EVENTS_VERSION,
            kind="syn",
            config=self.run.config if self.run else {},
            totals={
                "requests": len(planned),
                "groups": len(planned),
                "todo": len(planned) - len(done),
            },
        )
        sampling = Sampling(config.max_new_tokens, config.temperature, config.top_p)
        started, made = time.monotonic(), 0
        for index, batch in enumerate(batches):
            if all(group.item.id in done for group in batch):
                continue
            if self.cancel.is_set():
                raise Cancelled
            prompts = [
                (position * SLOTS + slot, prompt, (0,))
                for position, group in enumerate(batch)
                for slot, prompt in enumerate(group.prompts)
            ]
            generated = backend.generate(
                prompts, sampling, batch_seed(config.seed, index), self.sink, self.cancel
            )
            texts = {g.key: g.text for g in generated}
            for position, group in enumerate(batch):
                if group.item.id in done:
                    continue
                answers = [texts[position * SLOTS + slot] for slot in range(SLOTS)]
                self._save(group, answers, judge)
                done.add(group.item.id)
                made += 1
            rate = made / max(time.monotonic() - started, 1e-9)
            left = len(planned) - len(done)
            self.sink.emit(
                "progress",
                done=len(done),
                total=len(planned),
                rate=round(rate, 3),
                eta_s=round(left / rate, 1) if rate > 0 else None,
            )
        metrics = self._metrics()
        run = runs.set_status(self.store, run_id, RunStatus.DONE, metrics=metrics)
        self.run = run
        self.sink.emit("run_finished", status=run.status.value, metrics=metrics)
        return run

    def _save(self, group: PlannedGroup, answers: list[str], judge: Judge | None) -> None:
        """Rank the six responses, verify them if asked, and commit the group."""
        item = group.item
        responses = [syn_store.Response(0, "safe", answers[0].strip())]
        for i, (prefill, cut) in enumerate(zip(group.prefills, group.cuts), start=1):
            responses.append(
                syn_store.Response(i, f"syn{i}", prefill + answers[i], cut, group.trigger)
            )
        responses.append(
            syn_store.Response(5, "harmful", f"{group.opener} {item.harmful_response.rstrip()}")
        )
        status, reason = "ok", None
        if not responses[0].text:
            status, reason = "rejected", "empty safe response"
        elif judge is not None:
            checks = [JudgeInput(item.request, "", responses[0].text)] + [
                JudgeInput(item.request, prefill, answers[i])
                for i, prefill in enumerate(group.prefills, start=1)
            ]
            verdicts = judge.judge(checks)
            failed = [
                role
                for role, v in zip(("safe", "syn1", "syn2", "syn3", "syn4"), verdicts)
                if v.label != "yes"
            ]
            if failed:
                status = "rejected"
                reason = f"{failed[0]} {'does not refuse' if failed[0] == 'safe' else 'does not correct'}"
        syn_store.save_group(self.store, self._run_id, item.id, status, reason, responses)
        self.sink.emit(
            "group_done",
            item=item.idx,
            request=item.request,
            status=status,
            reason=reason,
            responses=[
                {
                    "rank": r.rank,
                    "role": r.role,
                    "text": r.text,
                    "trigger": r.trigger,
                    "cut_chars": r.cut_chars,
                }
                for r in responses
            ],
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

    def _record_end(self, exc: BaseException) -> None:
        if self.run is None:
            return
        if isinstance(exc, (Cancelled, KeyboardInterrupt)):
            runs.set_status(
                self.store,
                self.run.id,
                RunStatus.PAUSED,
                error=f"cancelled; resume with ccapp syn --resume {self.run.id}",
            )
            self.sink.emit("run_finished", status="paused", metrics=None)
            return
        message = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        runs.set_status(self.store, self.run.id, RunStatus.FAILED, error=message)
        self.sink.emit("error", message=message)
        self.sink.emit("run_finished", status="failed", metrics=None)

    @property
    def _run_id(self) -> int:
        assert self.run is not None
        return self.run.id


def failed_requests(store: Store, eval_run_id: int) -> list[tuple[int, str, str, str | None]]:
    """Requests of an eval run on which the model failed to course-correct, most failures first.

    A request counts when its run judge said "no" for at least one path at any k.
    """
    run = runs.get_run(store, eval_run_id)
    if run.kind is not RunKind.EVAL:
        raise UserError(
            f"run {eval_run_id} is a {run.kind.value} run",
            where="--from-run",
            fix="give an eval run (see ccapp runs list --kind eval)",
        )
    failures: Counter[int] = Counter()
    for item_idx, _k, label, _tokens, _relapse in rows_store.judged(store, eval_run_id, run.judge):
        if label == "no":
            failures[item_idx] += 1
    items = {item.idx: item for item in rows_store.get_items(store, eval_run_id)}
    order = sorted(failures, key=lambda idx: (-failures[idx], idx))
    return [
        (idx, items[idx].request, items[idx].harmful_response, items[idx].safe_response)
        for idx in order
    ]


def _describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in counts.items() if n)
