"""Training with the field's tools: --report-to (TensorBoard event files read back), --config
(TRL's DPOConfig YAML, flags over it, stored with the run) and --eval-fraction (held-out
requests whose eval loss and reward accuracy are stored, sent as events and logged)."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from ccapp.engines.dpo.arguments import build_dpo_config, dpo_arguments, eval_steps
from ccapp.engines.dpo.config import TrainConfig
from ccapp.engines.dpo.dpo_yaml import parse_dpo_yaml, with_file
from ccapp.engines.dpo.eval_split import split_pairs
from ccapp.engines.dpo.train import Training
from ccapp.engines.events import Event, MetricsEvent, NullSink, Progress, RunStarted, parse_line
from ccapp.engines.generation.types import Cancelled
from ccapp.errors import UserError
from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store import train as train_store

from helpers import run_ccapp

REQUESTS = 20
PAIRS_PER_REQUEST = 6


def pair_rows(requests: int = REQUESTS) -> list[dict[str, Any]]:
    """Preference pairs in TRL's format, six per request, as a C2-Syn group gives them."""
    rows = []
    for r in range(requests):
        prompt = [{"role": "user", "content": f"How would someone go about harmful plan {r}?"}]
        for p in range(PAIRS_PER_REQUEST):
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": f"I cannot help with plan {r}."}],
                    "rejected": [
                        {"role": "assistant", "content": f"Sure, step {p} of plan {r} is this."}
                    ],
                }
            )
    return rows


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in pair_rows()))
    return path


def train_flags(pairs: Path, model: Path, out: Path, db: Path, *extra: str) -> list[str]:
    """`ccapp train` on the tiny model, quick on a CPU, with `extra` flags."""
    options = {
        "--pairs": pairs,
        "--model": model,
        "--device": "cpu",
        "--max-length": 128,
        "--batch-size": 8,
        "--lr": "2e-2",
        "--output": out,
        "--db": db,
    }
    return ["train", *(str(part) for pair in options.items() for part in pair), *extra]


def scalars(folder: Path, tag: str) -> dict[int, float]:
    """A scalar's values by step, read back from TensorBoard's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    assert tag in accumulator.Tags()["scalars"], accumulator.Tags()["scalars"]
    return {e.step: e.value for e in accumulator.Scalars(tag)}


def test_report_to_tensorboard_with_an_eval_split_leaves_train_and_eval_loss_in_event_files(
    pairs_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    out, db = tmp_path / "out", tmp_path / "t.db"
    result = run_ccapp(
        *train_flags(pairs_file, tiny_model_dir, out, db, "--max-steps", "6"),
        "--report-to",
        "tensorboard",
        "--eval-fraction",
        "0.1",
        "--events",
        "jsonl",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    events = [parse_line(line) for line in result.stdout.splitlines()]
    started = next(e for e in events if isinstance(e, RunStarted))
    held = round(0.1 * REQUESTS) * PAIRS_PER_REQUEST  # whole requests: 2 of 20, 12 pairs
    assert started.totals["eval_pairs"] == held
    assert started.totals["pairs"] == REQUESTS * PAIRS_PER_REQUEST - held

    board = out / "tensorboard"
    assert list(board.glob("events.out.tfevents.*"))
    train_loss = scalars(board, "train/loss")
    eval_loss = scalars(board, "eval/loss")
    assert sorted(train_loss) == [1, 2, 3, 4, 5, 6]
    assert eval_loss and max(eval_loss) == 6  # scored through to the last step

    with Store.open(db) as store:
        run = runs.get_run(store, started.run_id or 0)
        stored = train_store.eval_points(store, run.id)
        steps = [p.step for p in train_store.points(store, run.id)]
    assert steps == [1, 2, 3, 4, 5, 6]  # the eval rows merged into the steps' rows
    assert [p.step for p in stored] == sorted(eval_loss)
    for point in stored:
        assert point.eval_loss == pytest.approx(eval_loss[point.step], rel=1e-5)
        assert point.eval_reward_accuracy is not None and 0 <= point.eval_reward_accuracy <= 1
        assert point.loss == pytest.approx(train_loss[point.step], rel=1e-5)
    sent = [e.metrics for e in events if isinstance(e, MetricsEvent)]
    assert [m["step"] for m in sent] == [p.step for p in stored]
    assert [m["eval_loss"] for m in sent] == [p.eval_loss for p in stored]
    assert run.metrics["eval_loss_last"] == pytest.approx(stored[-1].eval_loss, abs=1e-5)
    assert run.metrics["eval_pairs"] == held and run.metrics["tensorboard"] == str(board)


def test_the_eval_split_holds_out_whole_requests_the_same_way_for_a_seed() -> None:
    import datasets

    rows = pair_rows(30)
    dataset = datasets.Dataset.from_list(rows)
    split = split_pairs(dataset, 0.2, seed=3)
    assert split.requests == 30 and split.eval_requests == 6 and split.eval is not None
    train_prompts = {json.dumps(p) for p in split.train["prompt"]}
    eval_prompts = {json.dumps(p) for p in split.eval["prompt"]}
    assert len(eval_prompts) == 6 and not train_prompts & eval_prompts  # no request on both sides
    assert split.eval.num_rows == 6 * PAIRS_PER_REQUEST
    assert split.train.num_rows + split.eval.num_rows == len(rows)
    again, other = split_pairs(dataset, 0.2, seed=3), split_pairs(dataset, 0.2, seed=4)
    assert again.eval is not None and again.eval["chosen"] == split.eval["chosen"]
    assert other.eval is not None and {json.dumps(p) for p in other.eval["prompt"]} != eval_prompts
    # At least one request is held out, and never all of them; text prompts work as messages do.
    tiny = datasets.Dataset.from_list(
        [{"prompt": f"request {i}", "chosen": "no", "rejected": "yes"} for i in range(3)]
    )
    assert split_pairs(tiny, 0.01, seed=0).eval_requests == 1
    assert split_pairs(tiny, 0.99, seed=0).eval_requests == 2
    assert split_pairs(dataset, 0.0, seed=0).eval is None
    with pytest.raises(UserError) as refused:
        split_pairs(datasets.Dataset.from_list(rows[:PAIRS_PER_REQUEST]), 0.5, seed=0)
    assert refused.value.where == "--eval-fraction"


def test_eval_steps_give_about_ten_points_per_run() -> None:
    assert [eval_steps(n) for n in (1, 6, 10, 25, 1000)] == [1, 1, 1, 3, 100]


def test_the_config_file_fills_the_options_not_given_and_given_flags_win(tmp_path: Path) -> None:
    path = tmp_path / "dpo.yaml"
    path.write_text(
        "# a TRL recipe's keys\n"
        "learning_rate: 5e-5\n"  # a string to YAML 1.1: typed as TrlParser types it
        "beta: 0.3\n"
        "per_device_train_batch_size: 2\n"
        "max_steps: -1\n"
        "report_to: [none]\n"
        "lr_scheduler_type: constant\n"
        "warmup_steps: 0.1\n"
        "env:\n  SOME_VAR: 1\n"
    )
    config = with_file({"pairs": "p", "model": "m", "dpo_config": str(path), "beta": 0.2})
    assert config.lr == 5e-5 and isinstance(config.lr, float)
    assert config.beta == 0.2  # --beta was given: the flag wins over the file's 0.3
    assert config.batch_size == 2 and config.max_steps is None and config.report_to == "none"
    file = parse_dpo_yaml(path.read_text(), str(path))
    assert file.trainer_args() == {"lr_scheduler_type": "constant", "warmup_steps": 0.1}
    assert file.env == {"SOME_VAR": "1"}
    assert file.overridden(config) == ["beta 0.3 → --beta 0.2"]
    args = dpo_arguments(
        config,
        output=tmp_path / "o",
        device="cpu",
        total_steps=10,
        has_eval=False,
        run_name="r",
        file=file,
    )
    assert args["lr_scheduler_type"] == "constant" and args["learning_rate"] == 5e-5
    assert args["beta"] == 0.2 and args["output_dir"] == str(tmp_path / "o" / "checkpoints")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("learning_rat: 1.0e-4\n", ["unknown key 'learning_rat'", "closest: learning_rate"]),
        ("use_cpu: true\n", ["use_cpu is set by ccapp itself", "--device cpu"]),
        ("model_name_or_path: Qwen/Qwen2-0.5B\n", ["model_name_or_path", "--model"]),
        ("learning_rate: fast\n", ["learning_rate", "'fast' is not a number"]),
        ("lr_scheduler_type: cosin\n", ["lr_scheduler_type", "cosine"]),
        ("beta: -1\n", ["beta: invalid value -1.0", "above 0"]),
        ("report_to: [tensorboard, wandb]\n", ["report_to lists 2 trackers"]),
        ("- learning_rate\n", ["not a mapping"]),
        ("learning_rate: [1\n", ["not valid YAML at line"]),
    ],
)
def test_config_file_mistakes_name_the_file_the_key_and_the_fix(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    path = tmp_path / "dpo.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as refused:
        with_file({"pairs": "p", "model": "m", "dpo_config": str(path)})
    message = refused.value.message
    assert refused.value.where == "--config" and str(path) in message
    for word in words:
        assert word in message


def test_settings_that_contradict_the_run_are_refused(tmp_path: Path) -> None:
    loss = parse_dpo_yaml("loss_type: [sigmoid]\n", "loss.yaml")
    evals = parse_dpo_yaml("eval_strategy: steps\neval_steps: 5\n", "evals.yaml")
    common: dict[str, Any] = {
        "output": tmp_path,
        "device": "cpu",
        "total_steps": 10,
        "run_name": "r",
    }
    with pytest.raises(UserError, match="--sft-weight builds them too"):
        dpo_arguments(TrainConfig("p", "m", sft_weight=0.5), has_eval=False, file=loss, **common)
    with pytest.raises(UserError, match="no eval split"):
        dpo_arguments(TrainConfig("p", "m"), has_eval=False, file=evals, **common)
    # With an eval split the file's eval_steps replace ccapp's tenth of the run.
    args = dpo_arguments(TrainConfig("p", "m"), has_eval=True, file=evals, **common)
    assert args["eval_steps"] == 5 and args["per_device_eval_batch_size"] == 4
    assert build_dpo_config(args, evals).eval_steps == 5
    # What TRL itself refuses is reported as the file's.
    best = parse_dpo_yaml("load_best_model_at_end: true\n", "best.yaml")
    with pytest.raises(UserError, match="best.yaml") as refused:
        build_dpo_config(
            dpo_arguments(TrainConfig("p", "m"), has_eval=False, file=best, **common), best
        )
    assert refused.value.where == "--config"


def test_bad_config_and_a_missing_tracker_are_exit_2_before_anything_loads(
    pairs_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "dpo.yaml"
    path.write_text("learning_rate: 1.0e-4\nnum_train_epoch: 2\n")
    base = train_flags(pairs_file, tiny_model_dir, tmp_path / "o", tmp_path / "t.db")
    bad = run_ccapp(*base, "--config", str(path))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert str(path) in bad.stderr and "num_train_epoch" in bad.stderr
    assert "num_train_epochs" in bad.stderr
    if importlib.util.find_spec("trackio") is not None:
        pytest.skip("trackio is installed here")
    missing = run_ccapp(*base, "--report-to", "trackio")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "--report-to" in missing.stderr and "pip install trackio" in missing.stderr
    with Store.open(tmp_path / "t.db") as store:
        assert runs.list_runs(store) == []  # refused before a run was stored


class CancelAfter(NullSink):
    """Cancels the run once `steps` optimizer steps are done (the app's cancel, in-process)."""

    def __init__(self, cancel: threading.Event, steps: int) -> None:
        self.cancel, self.steps = cancel, steps
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        super().emit(event)
        self.events.append(event)
        if isinstance(event, Progress) and event.done >= self.steps:
            self.cancel.set()


def test_a_resumed_run_trains_with_the_config_file_it_started_with(
    pairs_file: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    board = tmp_path / "board"
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)  # the file's env: sets it
    path = tmp_path / "dpo.yaml"
    text = (
        "learning_rate: 4.0e-3\n"
        "lr_scheduler_type: constant\n"  # without it the rate would decay step by step
        "save_steps: 2\n"
        f"env:\n  TENSORBOARD_LOGGING_DIR: {board}\n"
    )
    path.write_text(text)
    config = with_file(
        {
            "pairs": str(pairs_file),
            "model": str(tiny_model_dir),
            "dpo_config": str(path),
            "max_steps": 4,
            "batch_size": 8,
            "max_length": 128,
            "device": "cpu",
            "output": str(tmp_path / "out"),
            "report_to": "tensorboard",
        }
    )
    assert config.save_steps == 2 and config.lr == 4e-3
    cancel = threading.Event()
    with Store.open(tmp_path / "t.db") as store:
        with pytest.raises(Cancelled):
            Training(store, CancelAfter(cancel, 2), cancel).start(config)
        run_id = runs.list_runs(store)[0].id
        assert runs.get_run(store, run_id).status is RunStatus.PAUSED
        assert runs.get_run(store, run_id).config["dpo_yaml"] == text
        path.write_text("no_such_field: 1\n")  # the file changes: the run keeps what it had
        done = Training(store).resume(run_id)
        rates = [p.learning_rate for p in train_store.points(store, run_id)]
    assert done.status is RunStatus.DONE
    assert rates == [pytest.approx(4e-3)] * 4  # steps 3-4 too: constant, from the stored text
    assert sorted(scalars(board, "train/loss")) == [1, 2, 3, 4]  # env: moved the event files


def test_a_steps_train_log_and_eval_are_merged_in_either_order(tmp_path: Path) -> None:
    with Store.open(tmp_path / "t.db") as store:
        run = runs.create_run(store, RunKind.TRAIN, {}, model="m", data="d")
        train_store.add_point(store, run.id, 1, 0.5, {"loss": 0.6, "rewards/accuracies": 0.25})
        train_store.add_eval(
            store, run.id, 1, 0.5, {"eval_loss": 0.7, "eval_rewards/accuracies": 0.5}
        )
        train_store.add_eval(store, run.id, 2, 1.0, {"eval_loss": 0.65, "epoch": 1.0})
        train_store.add_point(store, run.id, 2, 1.0, {"loss": 0.4, "grad_norm": 2.0})
        first, second = train_store.points(store, run.id)
        assert train_store.eval_points(store, run.id) == [first, second]
    assert (first.loss, first.reward_accuracy, first.eval_loss) == (0.6, 0.25, 0.7)
    assert first.eval_reward_accuracy == 0.5
    assert (second.loss, second.eval_loss, second.epoch) == (0.4, 0.65, 1.0)


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_offline_needs_no_network(
    pairs_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    result = run_ccapp(
        *train_flags(pairs_file, tiny_model_dir, tmp_path / "o", tmp_path / "t.db"),
        "--max-steps",
        "2",
        "--report-to",
        "wandb",
        env={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "wandb").glob("offline-run-*"))
