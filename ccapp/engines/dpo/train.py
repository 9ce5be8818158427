"""DPO training on C2-Syn pairs with TRL, as LoRA, QLoRA or full fine-tuning.

TRL's `DPOTrainer` does the training; this module resolves the pairs (a Syn run streamed
from the store, or an exported/Hub dataset), loads the model, checks the memory it will need
before it starts, and reports every logged step into the store and as events through a
`TrainerCallback`. Checkpoints make a run resumable; a cancel stops at the next step
boundary and saves. The output folder is what `ccapp eval --model DIR` takes: a LoRA
adapter (loaded on its base) or a full model, with the tokenizer and chat template.

With `--eval-fraction` whole requests are held out (ccapp.engines.dpo.eval_split) and their
eval loss and reward accuracy are stored beside the training curves and sent as `metrics`
events; `--report-to` hands the same logs to TensorBoard, W&B or Trackio through TRL, and
`--config` takes a TRL DPOConfig YAML (ccapp.engines.dpo.dpo_yaml, .arguments).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ccapp.engines.dpo.config import DEFAULT_LR as DEFAULT_LR  # re-exported: scripts read it
from ccapp.engines.dpo.config import RESULT_SETTINGS, TrainConfig
from ccapp.engines.dpo.dpo_yaml import DpoYaml, parse_dpo_yaml, read_dpo_yaml
from ccapp.engines.dpo.eval_split import split_pairs
from ccapp.engines.events import Log, MetricsEvent, ModelLoading, Progress, TrainLog
from ccapp.engines.generation.types import Cancelled
from ccapp.engines.jobs import RunJob
from ccapp.errors import UserError
from ccapp.store import RunKind, Store, runs
from ccapp.store.records import Run

GIB = 1024**3


@dataclass(frozen=True)
class MemoryEstimate:
    """What a training run will hold in memory, in bytes, and where it goes."""

    params: int
    trainable: int
    weights: int
    gradients: int
    optimizer: int
    reference: int
    activations: int
    available: int | None
    device: str

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.reference + self.activations

    @property
    def likely_oom(self) -> bool:
        return self.available is not None and self.total > 0.9 * self.available

    def describe(self) -> str:
        parts = [
            f"{self.params / 1e6:.1f}M parameters ({self.trainable / 1e6:.2f}M trained)",
            f"weights {self.weights / GIB:.2f} GiB",
            f"gradients {self.gradients / GIB:.2f} GiB",
            f"optimizer {self.optimizer / GIB:.2f} GiB",
            f"reference {self.reference / GIB:.2f} GiB",
            f"activations ~{self.activations / GIB:.2f} GiB",
        ]
        free = f" of {self.available / GIB:.1f} GiB free on {self.device}" if self.available else ""
        return f"memory: ~{self.total / GIB:.2f} GiB{free} — " + ", ".join(parts)


def planned_steps(rows: int, config: TrainConfig, world_size: int = 1) -> int:
    """Optimizer steps the run will take, as the Trainer counts them, known before it starts
    (its own count appears only inside train(), too late for the run_started event)."""
    if config.max_steps:
        return config.max_steps
    batches = math.ceil(math.ceil(rows / max(1, world_size)) / config.batch_size)
    per_epoch = max(1, batches // config.grad_accum)
    return math.ceil(config.epochs * per_epoch)


def estimate_memory(
    model: Any, config: TrainConfig, *, trainable: int, device: str, available: int | None
) -> MemoryEstimate:
    """A preflight estimate: weights, fp32 gradients and Adam states of what is trained, the
    reference (a second copy for full DPO unless its log-probs are precomputed; none for LoRA,
    whose reference is the base with the adapter off), and activations of one micro-batch."""
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    cfg = model.config
    hidden = int(getattr(cfg, "hidden_size", 1024))
    layers = int(getattr(cfg, "num_hidden_layers", 24))
    vocab = int(getattr(cfg, "vocab_size", 32000))
    tokens = 2 * config.batch_size * config.max_length  # chosen and rejected
    activation = (
        tokens * (hidden * layers * (4 if config.gradient_checkpointing else 18) + vocab * 2) * 2
    )
    reference = 0 if config.method != "full" or config.precompute_ref else weight_bytes
    return MemoryEstimate(
        params,
        trainable,
        weight_bytes,
        trainable * 4,
        trainable * 8,
        reference,
        activation,
        available,
        device,
    )


_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def load_pairs(spec: str, store: Store) -> tuple[Any, int | None]:
    """The pairs as a `datasets.Dataset`, and the Syn run they came from (None for a folder).

    A Syn run is streamed from the store into the dataset's Arrow cache (memory stays flat at
    750K pairs); a folder or Hub id is read with `datasets.load_dataset`. The cache is keyed
    on the run's content, not on the generator's arguments (store path, run id), which stay
    the same when a store is recreated at the same path or a Syn run is resumed with more
    groups: keyed on those, training silently reused the pairs of the first load.
    """
    import datasets

    datasets.disable_progress_bars()  # run events report progress; the bars only clutter stderr
    if spec.strip().isdigit():
        run = runs.get_run(store, int(spec))
        if run.kind is not RunKind.SYN:
            raise UserError(
                f"run {run.id} is {run.kind.a_run}, not a syn run",
                where="--pairs",
                fix="give a syn run (ccapp runs list --kind syn) or an exported pairs folder",
            )
        dataset = datasets.Dataset.from_generator(
            _stream_pairs,
            gen_kwargs={"db": str(store.path), "run_id": run.id},
            fingerprint=_pairs_fingerprint(store, run.id),
        )
        if dataset.num_rows == 0:
            raise UserError(
                f"syn run {run.id} has no accepted pairs",
                where="--pairs",
                fix="synthesize more, or without --verify-judge",
            )
        return dataset, run.id
    try:
        path = Path(spec).expanduser()
        builder = _FILE_BUILDERS.get(path.suffix.lower()) if path.is_file() else None
        if builder:  # a single file of pairs: .jsonl, .json, .parquet, .csv
            dataset = datasets.load_dataset(builder, data_files=str(path), split="train")
        elif path.exists():
            dataset = datasets.load_dataset(str(path), split="train")
        else:
            dataset = datasets.load_dataset(spec, split="train")
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot load pairs from '{spec}' ({reason})",
            where="--pairs",
            fix="give a syn run id, a folder written by ccapp export --format pairs, or a "
            ".jsonl/.parquet/.csv file of prompt, chosen, rejected",
        ) from None
    missing = {"prompt", "chosen", "rejected"} - set(dataset.column_names)
    if missing:
        raise UserError(
            f"the pairs lack column(s) {', '.join(sorted(missing))}",
            where="--pairs",
            fix="use TRL's preference format: prompt, chosen, rejected",
        )
    mistyped = [
        c for c in ("prompt", "chosen", "rejected") if not _text_or_messages(dataset.features[c])
    ]
    if mistyped:
        raise UserError(
            f"the pairs' column(s) {', '.join(mistyped)} hold neither text nor chat messages",
            where="--pairs",
            fix="each of prompt, chosen, rejected must be a string or a list of "
            "{role, content} messages (ccapp export --format pairs writes them so)",
        )
    return dataset, None


def _text_or_messages(feature: Any) -> bool:
    """A column DPOTrainer can tokenize: text, or a list of {role, content} messages. Checked
    on the schema, so a mistyped folder fails here and not after the model has loaded."""
    from datasets import Value

    def is_text(f: Any) -> bool:
        return isinstance(f, Value) and f.dtype in ("string", "large_string")

    if is_text(feature):
        return True
    inner = (
        feature[0] if isinstance(feature, list) and feature else getattr(feature, "feature", None)
    )
    return isinstance(inner, dict) and all(is_text(inner.get(key)) for key in ("role", "content"))


def _pairs_fingerprint(store: Store, run_id: int) -> str:
    """The dataset cache's key: the pair format's version and a hash of the run's groups."""
    from ccapp.engines.c2syn.pairs_export import PAIRS_SCHEMA_VERSION
    from ccapp.store import syn as syn_store

    digest = syn_store.pairs_digest(store, run_id)
    return f"ccapp-pairs-v{PAIRS_SCHEMA_VERSION}-run{run_id}-{digest}"


def _stream_pairs(db: str, run_id: int) -> Any:
    from ccapp.engines.c2syn.pairs_export import pair_rows

    with Store.open(db) as store:
        yield from pair_rows(store, run_id)


class Training(RunJob[TrainConfig]):
    """One DPO run in this process: start a new one or resume a stored one from its checkpoint."""

    kind = RunKind.TRAIN
    config_type = TrainConfig
    when_done = "evaluate its output, or train again"
    cancelled = "cancelled at a step boundary"

    def start(self, config: TrainConfig) -> Run:
        from ccapp.config import paths
        from ccapp.engines.generation.models import check_trainable, resolve_model

        config.check()
        file = read_dpo_yaml(config.dpo_config) if config.dpo_config else None
        ref = resolve_model(config.model)  # a bad --model fails before a run is stored
        check_trainable(ref)
        dataset, syn_run = load_pairs(config.pairs, self.store)
        stored = asdict(config) | {
            "model_source": ref.source,
            "model_revision": ref.revision,
            "learning_rate": config.learning_rate,
            "pairs_rows": dataset.num_rows,
        }
        if file is not None:  # what the file said, kept: a resume trains with it, not the file
            stored["dpo_yaml"] = file.text
        identity = {k: stored[k] for k in (*RESULT_SETTINGS, "dpo_yaml") if k in stored}
        if self.main_process:
            self.run = runs.create_run(
                self.store,
                RunKind.TRAIN,
                stored,
                model=config.model,
                data=f"run {syn_run}" if syn_run else config.pairs,
                parent_id=syn_run,
                identity=identity,
            )
            output = Path(
                config.output or paths().data_dir / "models" / f"train-{self.run.id}"
            ).expanduser()
            config = replace(config, output=str(output.resolve()))
            with self.store.write() as db:
                db.execute(
                    "UPDATE runs SET config = ? WHERE id = ?",
                    [
                        json.dumps(
                            asdict(config) | stored | {"output": config.output}, sort_keys=True
                        ),
                        self.run.id,
                    ],
                )
        with self._recording():
            return self._train(config, dataset, resume_from=None, file=file)

    def resume(self, run_id: int, overrides: dict[str, Any] | None = None) -> Run:
        """Carry a run on from its last checkpoint. Of the options given, those that do not
        decide results (device, --report-to, …) apply; its output folder stays."""
        from transformers.trainer_utils import get_last_checkpoint

        run, config = self._reopen(run_id)
        given = dict(overrides or {})
        if given.get("output") not in (None, config.output):
            raise UserError(
                f"run {run_id} writes to {config.output}; a resume keeps its output folder",
                where="--output",
                fix="resume without --output",
            )
        given.pop("output", None)
        config = self._keep_settings(run_id, config, given)
        stored_yaml = run.config.get("dpo_yaml")
        file = (
            parse_dpo_yaml(stored_yaml, f"{config.dpo_config} (as run {run_id} stored it)")
            if isinstance(stored_yaml, str)
            else None
        )
        checkpoints = Path(str(config.output)) / "checkpoints"
        last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
        dataset, _ = load_pairs(config.pairs, self.store)
        before = run.config.get("pairs_rows")
        if before is not None and before != dataset.num_rows:
            self.sink.emit(
                Log(
                    level="warning",
                    message=f"the pairs changed since run {run_id} started ({before} → "
                    f"{dataset.num_rows}); it continues on the {dataset.num_rows} pairs stored now",
                )
            )
        changed = {k: v for k, v in asdict(config).items() if run.config.get(k) != v}
        self._claim(run_id, {"pairs_rows": dataset.num_rows} | changed)
        if last is None:
            self.sink.emit(
                Log(level="warning", message="no checkpoint was saved yet: training starts over")
            )
        with self._recording():
            return self._train(config, dataset, resume_from=last, file=file)

    # -- the work -------------------------------------------------------------------------

    def _train(
        self, config: TrainConfig, dataset: Any, resume_from: str | None, file: DpoYaml | None
    ) -> Run:
        import warnings

        from trl import DPOTrainer

        from ccapp.engines.dpo.arguments import build_dpo_config, dpo_arguments, place_tensorboard

        # TRL 1.x still calls a transformers 5 method that warns on every run; nothing to act on.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
        )
        if file is not None:
            os.environ.update(file.env)  # TrlParser's `env:`, before any tracker starts
            for line in file.overridden(config):
                self.sink.emit(Log(level="info", message=f"{file.source}: {line} (flags win)"))
        split = split_pairs(dataset, config.eval_fraction, config.seed)
        if split.eval is not None:
            self.sink.emit(
                Log(
                    level="info",
                    message=f"eval split: {split.eval.num_rows} pairs of {split.eval_requests} "
                    f"of {split.requests} requests held out",
                )
            )
        model, tokenizer, device = self._load_model(config)
        peft_config = self._peft_config(config)
        trainable = self._trainable_params(model, peft_config)
        estimate = estimate_memory(
            model, config, trainable=trainable, device=device, available=_available_memory(device)
        )
        self.sink.emit(
            Log(level="warning" if estimate.likely_oom else "info", message=estimate.describe())
        )
        if estimate.likely_oom:
            self.sink.emit(
                Log(
                    level="warning",
                    message=(
                        "this may run out of memory: try --method lora, a smaller --batch-size "
                        "with --grad-accum, --max-length, --precompute-ref or "
                        "--gradient-checkpointing"
                    ),
                )
            )
        output = Path(str(config.output))
        # The Trainer counts its steps only inside train(); eval_steps and run_started need
        # them before (WORLD_SIZE is what accelerate gives the Trainer too).
        total = planned_steps(split.train.num_rows, config, int(os.environ.get("WORLD_SIZE", "1")))
        args = build_dpo_config(
            dpo_arguments(
                config,
                output=output,
                device=device,
                total_steps=total,
                has_eval=split.eval is not None,
                run_name=f"ccapp-train-{self.run.id}" if self.run else "ccapp-train",
                file=file,
            ),
            file,
        )
        reference = None
        if config.method == "full" and not config.precompute_ref:
            import copy

            reference = copy.deepcopy(model).eval()  # explicit: TRL would reload it from the name
        datasets = split.trainer_datasets()
        trainer = DPOTrainer(
            model, reference, args, processing_class=tokenizer, peft_config=peft_config, **datasets
        )
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        callback = reporting_callback(self)
        trainer.add_callback(callback)
        for noisy in (PrinterCallback, ProgressCallback):  # our events and the store replace them
            trainer.remove_callback(noisy)
        place_tensorboard(trainer, output / "tensorboard")
        self._started(split.totals() | {"steps": total})
        trainer.train(resume_from_checkpoint=resume_from)
        if self.cancel.is_set():
            raise Cancelled
        if split.eval is not None and callback.last_eval_step != trainer.state.global_step:
            trainer.evaluate()  # the curve ends where training did
        if not self.main_process:
            return self.run  # type: ignore[return-value]
        self._save(trainer, tokenizer, config, output)
        metrics = callback.summary() | {
            "steps": int(trainer.state.global_step),
            "pairs": dataset.num_rows,
            "output": str(output),
            "params": estimate.params,
            "trainable_params": trainable,
        }
        if split.eval is not None:
            metrics |= {"eval_pairs": split.eval.num_rows, "eval_requests": split.eval_requests}
        if config.report_to == "tensorboard":
            metrics["tensorboard"] = str(output / "tensorboard")
        return self._finish(metrics)

    def _load_model(self, config: TrainConfig) -> tuple[Any, Any, str]:
        from ccapp.engines.generation.models import load_model, resolve_model

        ref = resolve_model(config.model)
        if ref.adapter_base:
            raise UserError(
                "a LoRA adapter folder cannot be trained further here",
                where="--model",
                fix="merge it first (ccapp train … --merge wrote merged/), or train its base",
            )
        device = config.device
        launched = "LOCAL_RANK" in os.environ  # under accelerate/torchrun: DDP places the model
        if device == "auto":
            import torch

            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        if ref.note:
            self.sink.emit(ModelLoading(phase="resolve", detail=ref.note))
        from ccapp.engines.generation.hub import snapshot_of

        def report(**loading: Any) -> None:
            self.sink.emit(ModelLoading(**loading))

        folder = snapshot_of(ref, report, revision=config.revision)  # a Hub model at --revision
        self.sink.emit(ModelLoading(phase="weights", detail=ref.source))
        loaded = load_model(
            ref,
            device="cpu" if launched else device,
            dtype=config.dtype,
            load_in_4bit=config.method == "qlora",
            folder=folder,
        )
        if config.method == "qlora":
            from peft import prepare_model_for_kbit_training

            loaded.model = prepare_model_for_kbit_training(loaded.model)
        loaded.model.train()
        if loaded.tokenizer.pad_token is None:
            loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
        self.sink.emit(ModelLoading(phase="ready", detail=f"{device} {loaded.dtype}"))
        return loaded.model, loaded.tokenizer, device

    @staticmethod
    def _peft_config(config: TrainConfig) -> Any:
        if config.method == "full":
            return None
        from peft import LoraConfig

        return LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )

    @staticmethod
    def _trainable_params(model: Any, peft_config: Any) -> int:
        if peft_config is None:
            return sum(p.numel() for p in model.parameters())
        # LoRA trains r × (in + out) per adapted linear layer.
        import torch

        total = 0
        for module in model.modules():
            if (
                isinstance(module, torch.nn.Linear)
                and module.out_features != model.config.vocab_size
            ):
                total += peft_config.r * (module.in_features + module.out_features)
        return total

    def _save(self, trainer: Any, tokenizer: Any, config: TrainConfig, output: Path) -> None:
        """The folder `ccapp eval --model` takes, and, with --merge, a merged full model."""
        trainer.save_model(str(output))
        tokenizer.save_pretrained(str(output))
        if config.method != "full" and config.merge:
            merged = trainer.model.merge_and_unload()
            merged.save_pretrained(str(output / "merged"))
            tokenizer.save_pretrained(str(output / "merged"))
        stamp = (
            json.dumps(
                {
                    "run_id": self._run_id,
                    "base_model": config.model,
                    "method": config.method,
                    "pairs": config.pairs,
                },
                indent=2,
            )
            + "\n"
        )
        (output / "ccapp_train.json").write_text(stamp)  # lets an eval of it name its parent
        if (output / "merged").is_dir():
            (output / "merged" / "ccapp_train.json").write_text(stamp)

    def log_point(self, step: int, logs: dict[str, Any], epoch: float | None) -> None:
        if not self.main_process or self.run is None:
            return
        from ccapp.store import train as train_store

        train_store.add_point(self.store, self.run.id, step, epoch, logs)
        self.sink.emit(
            TrainLog(
                step=step,
                epoch=epoch,
                **{k: logs.get(key) for k, key in train_store.FIELDS.items()},
            )
        )

    def log_eval(self, step: int, logs: dict[str, Any], epoch: float | None) -> None:
        """The eval split's scores at a step: into the store beside the step's training log,
        and out as a `metrics` event (the live screen's eval curves)."""
        if not self.main_process or self.run is None:
            return
        from ccapp.store import train as train_store

        train_store.add_eval(self.store, self.run.id, step, epoch, logs)
        scores = {name: logs.get(key) for name, key in train_store.EVAL_FIELDS.items()}
        self.sink.emit(MetricsEvent(metrics={"step": step, "epoch": epoch} | scores))

    def _failure_message(self, exc: BaseException) -> str:
        if type(exc).__name__ == "OutOfMemoryError":
            return "out of GPU memory"
        return super()._failure_message(exc)


def reporting_callback(training: Training) -> Any:
    """A TrainerCallback that stores and reports each logged step and stops (and saves) on
    cancel. Built on call, so that importing this module does not import transformers."""
    from transformers import TrainerCallback

    class ReportingCallback(TrainerCallback):
        def __init__(self) -> None:
            self.first: dict[str, Any] = {}
            self.last: dict[str, Any] = {}
            self.first_eval: dict[str, Any] = {}
            self.last_eval: dict[str, Any] = {}
            self.last_eval_step: int | None = None
            self.started = time.monotonic()

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
        ) -> None:
            if logs and "eval_loss" in logs:
                self.first_eval = self.first_eval or dict(logs)
                self.last_eval, self.last_eval_step = dict(logs), state.global_step
                training.log_eval(state.global_step, logs, state.epoch)
                return
            if not logs or "loss" not in logs:
                return
            if not self.first:
                self.first = dict(logs)
            self.last = dict(logs)
            training.log_point(state.global_step, logs, state.epoch)

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            elapsed = time.monotonic() - self.started
            rate = state.global_step / elapsed if elapsed > 0 else 0.0
            left = max(0, (state.max_steps or 0) - state.global_step)
            if training.main_process:
                training.sink.emit(
                    Progress(
                        done=state.global_step,
                        total=state.max_steps,
                        rate=round(rate, 3),
                        eta_s=round(left / rate, 1) if rate > 0 else None,
                    )
                )
            if training.cancel.is_set():
                control.should_save = True  # a checkpoint at this step, then stop
                control.should_training_stop = True

        def summary(self) -> dict[str, Any]:
            def pick(logs: dict[str, Any], key: str) -> Any:
                value = logs.get(key)
                return round(float(value), 5) if isinstance(value, (int, float)) else None

            out = {
                "loss_first": pick(self.first, "loss"),
                "loss_last": pick(self.last, "loss"),
                "reward_margin_first": pick(self.first, "rewards/margins"),
                "reward_margin_last": pick(self.last, "rewards/margins"),
                "reward_accuracy_last": pick(self.last, "rewards/accuracies"),
            }
            if self.last_eval:
                out |= {
                    "eval_loss_first": pick(self.first_eval, "eval_loss"),
                    "eval_loss_last": pick(self.last_eval, "eval_loss"),
                    "eval_reward_margin_last": pick(self.last_eval, "eval_rewards/margins"),
                    "eval_reward_accuracy_last": pick(self.last_eval, "eval_rewards/accuracies"),
                }
            return out

    return ReportingCallback()


def _available_memory(device: str) -> int | None:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(int(device.split(":")[1]) if ":" in device else 0)[0])
    from ccapp.engines.devices import _system_memory

    return _system_memory()[1]
