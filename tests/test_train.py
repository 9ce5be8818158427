"""DPO training: LoRA steps that learn, logs in the store, resume after kill, full, merge, launch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ccapp.cli.train_cmd import launch_command
from ccapp.engines.c2syn.synthesize import SLOTS, SynConfig, Synthesis
from ccapp.engines.dpo.train import TrainConfig, Training, estimate_memory, load_pairs
from ccapp.engines.events import Event, Progress
from ccapp.engines.generation.types import Cancelled
from ccapp.errors import UserError
from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store import train as train_store
from ccapp.store.records import Run

from helpers import run_ccapp


@pytest.fixture(scope="module")
def syn_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, c2eval_file: Path
) -> tuple[Path, int]:
    """A small syn run of the tiny model (8 groups, up to 120 pairs) to train on. Groups whose
    SYN completion leaves its open trigger unfinished are rejected, so a few may be missing."""
    db = tmp_path_factory.mktemp("train") / "s.db"
    with Store.open(db) as store:
        run = Synthesis(store).start(
            SynConfig(
                str(tiny_model_dir), data=str(c2eval_file), limit=8, max_new_tokens=16, device="cpu"
            )
        )
    assert run.metrics["pairs"] >= 60
    return db, run.id


def train_args(db: Path, syn_id: int, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--pairs",
        str(syn_id),
        "--model",
        str(model),
        "--device",
        "cpu",
        "--max-length",
        "192",
        "--batch-size",
        "8",
        "--output",
        str(out),
        "--db",
        str(db),
        *extra,
    ]


def test_lora_learns_logs_to_the_store_and_its_output_evaluates(
    syn_store: tuple[Path, int], tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    db, syn_id = syn_store
    out = tmp_path / "lora"
    result = run_ccapp(
        *train_args(
            db,
            syn_id,
            tiny_model_dir,
            out,
            "--method",
            "lora",
            "--lr",
            "2e-2",
            "--max-steps",
            "20",
            "--json",
        ),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["kind"] == "train" and summary["status"] == "done"
    assert "memory: ~" in result.stderr and "reference 0.00 GiB" in result.stderr
    with Store.open(db) as store:
        run = runs.get_run(store, summary["run_id"])
        points = train_store.points(store, run.id)
    assert run.parent_id == syn_id and run.metrics["output"] == str(out.resolve())
    assert [p.step for p in points] == list(range(1, 21))
    early, late = points[:5], points[-5:]
    assert sum(p.loss for p in late) / 5 < sum(p.loss for p in early) / 5  # type: ignore[misc]
    assert sum(p.reward_margin for p in late) / 5 > sum(p.reward_margin for p in early) / 5  # type: ignore[misc]
    assert (out / "adapter_config.json").exists() and (out / "ccapp_train.json").exists()
    evaluated = run_ccapp(
        "eval",
        "--model",
        str(out),
        "--data",
        str(c2eval_file),
        "--limit",
        "2",
        "--k",
        "10",
        "--paths",
        "1",
        "--max-new-tokens",
        "4",
        "--json",
        "--db",
        str(db),
    )
    assert evaluated.returncode == 0, evaluated.stderr
    with Store.open(db) as store:
        after = runs.get_run(store, json.loads(evaluated.stdout.splitlines()[-1])["run_id"])
    assert after.parent_id == run.id  # lineage: syn → train → eval


def test_kill_during_training_then_resume_continues_from_the_checkpoint(
    syn_store: tuple[Path, int], tiny_model_dir: Path, tmp_path: Path
) -> None:
    db, syn_id = syn_store
    out = tmp_path / "resumable"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccapp",
            *train_args(
                db,
                syn_id,
                tiny_model_dir,
                out,
                "--lr",
                "1e-2",
                "--max-steps",
                "30",
                "--save-steps",
                "5",
                "--events",
                "jsonl",
            ),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    run_id = None
    for line in child.stdout:
        event = json.loads(line)
        run_id = event.get("run_id") or run_id
        if event["event"] == "progress" and event["done"] >= 12:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert (out / "checkpoints" / "checkpoint-10").is_dir()
    resumed = run_ccapp("train", "--resume", str(run_id), "--db", str(db), "--json", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    with Store.open(db) as store:
        run = runs.get_run(store, run_id)
        steps = [p.step for p in train_store.points(store, run_id)]
    assert run.status is RunStatus.DONE
    assert steps == list(range(1, 31))  # 11-12 logged again after resuming from step 10, replaced


def test_full_dpo_with_a_reference_copy_and_with_precomputed_reference(
    syn_store: tuple[Path, int], tiny_model_dir: Path, tmp_path: Path
) -> None:
    db, syn_id = syn_store
    for extra in ([], ["--precompute-ref"]):
        with Store.open(db) as store:
            run = Training(store).start(
                TrainConfig(
                    str(syn_id),
                    str(tiny_model_dir),
                    method="full",
                    lr=5e-3,
                    max_steps=4,
                    batch_size=8,
                    max_length=192,
                    device="cpu",
                    output=str(tmp_path / f"full{len(extra)}"),
                    precompute_ref=bool(extra),
                )
            )
        assert run.status is RunStatus.DONE and run.metrics["loss_last"] is not None
        assert (tmp_path / f"full{len(extra)}" / "model.safetensors").exists()


def test_merge_writes_a_full_model(
    syn_store: tuple[Path, int], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from ccapp.engines.generation.models import load_model, resolve_model

    db, syn_id = syn_store
    with Store.open(db) as store:
        Training(store).start(
            TrainConfig(
                str(syn_id),
                str(tiny_model_dir),
                lr=1e-2,
                max_steps=2,
                batch_size=8,
                max_length=192,
                device="cpu",
                output=str(tmp_path / "m"),
                merge=True,
            )
        )
    merged = load_model(resolve_model(str(tmp_path / "m" / "merged")), device="cpu")
    assert type(merged.model).__name__ == "LlamaForCausalLM"


def test_pairs_from_an_exported_folder(
    syn_store: tuple[Path, int], tiny_model_dir: Path, tmp_path: Path
) -> None:
    db, syn_id = syn_store
    assert (
        run_ccapp(
            "export",
            str(syn_id),
            "--format",
            "pairs",
            "--out",
            str(tmp_path / "pairs"),
            "--db",
            str(db),
        ).returncode
        == 0
    )
    with Store.open(db) as store:
        run = Training(store).start(
            TrainConfig(
                str(tmp_path / "pairs"),
                str(tiny_model_dir),
                lr=1e-2,
                max_steps=2,
                batch_size=8,
                max_length=192,
                device="cpu",
                output=str(tmp_path / "o"),
            )
        )
    assert run.kind is RunKind.TRAIN and run.parent_id is None and run.status is RunStatus.DONE


def test_lora_needs_far_less_memory_than_full_dpo(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    params = sum(p.numel() for p in model.parameters())
    full = estimate_memory(
        model, TrainConfig("1", "m", method="full"), trainable=params, device="cpu", available=None
    )
    lora = estimate_memory(
        model,
        TrainConfig("1", "m", method="lora"),
        trainable=params // 50,
        device="cpu",
        available=None,
    )
    precomputed = estimate_memory(
        model,
        TrainConfig("1", "m", method="full", precompute_ref=True),
        trainable=params,
        device="cpu",
        available=None,
    )
    assert full.reference == full.weights and lora.reference == 0 and precomputed.reference == 0
    assert lora.total < full.total
    assert estimate_memory(
        model, TrainConfig("1", "m"), trainable=params, device="cuda:0", available=1024
    ).likely_oom


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pairs", "99"], "no run 99"),
        (["--pairs", "/nonexistent/pairs"], "cannot load pairs"),
        (["--method", "qlora"], "QLoRA needs a CUDA GPU"),
        (["--beta", "0"], "--beta"),
        (["--method", "full", "--merge"], "--merge"),
    ],
)
def test_bad_train_input_is_exit_2(
    syn_store: tuple[Path, int], tiny_model_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    import torch

    if "qlora" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    db, syn_id = syn_store
    base = {"--pairs": str(syn_id), "--model": str(tiny_model_dir)}
    for flag in args[::2]:
        base.pop(flag, None)
    result = run_ccapp(
        "train", *[x for kv in base.items() for x in kv], *args, "--device", "cpu", "--db", str(db)
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_the_accelerate_command_line_carries_the_training_not_the_launcher() -> None:
    argv = [
        "train",
        "--pairs",
        "3",
        "--model",
        "qwen_7",
        "--launcher",
        "accelerate",
        "--accelerate-config",
        "fsdp.yaml",
        "--num-processes=4",
        "--method",
        "full",
    ]
    command = launch_command(argv, "fsdp.yaml", 4, cpu=False)
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert command[3:7] == ["--config_file", "fsdp.yaml", "--num_processes", "4"]
    assert command[7:] == [
        "-m",
        "ccapp",
        "train",
        "--pairs",
        "3",
        "--model",
        "qwen_7",
        "--method",
        "full",
    ]


@pytest.mark.slow
def test_a_one_process_accelerate_launch_trains(
    syn_store: tuple[Path, int], tiny_model_dir: Path, tmp_path: Path
) -> None:
    db, syn_id = syn_store
    result = run_ccapp(
        *train_args(
            db,
            syn_id,
            tiny_model_dir,
            tmp_path / "acc",
            "--lr",
            "1e-2",
            "--max-steps",
            "3",
            "--launcher",
            "accelerate",
            "--num-processes",
            "1",
            "--json",
        ),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "accelerate.commands.launch" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "done" and (tmp_path / "acc" / "adapter_model.safetensors").exists()


def test_a_done_run_cannot_be_resumed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = runs.create_run(store, RunKind.TRAIN, {})
        runs.set_status(store, run.id, RunStatus.DONE)
        with pytest.raises(UserError, match="already done"):
            Training(store).resume(run.id)


def _synthesize(db: Path, model: Path, data: Path, limit: int, **options: object) -> Run:
    with Store.open(db) as store:
        return Synthesis(store, **options).start(  # type: ignore[arg-type]
            SynConfig(str(model), data=str(data), limit=limit, max_new_tokens=8, device="cpu")
        )


def _drop_store(db: Path) -> None:
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)


def test_a_store_recreated_at_the_same_path_trains_on_its_new_pairs(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    """datasets caches a generated dataset by the generator's arguments (store path, run id):
    a new store at the same path must not be trained on the old store's pairs."""
    db = tmp_path / "same.db"
    first = _synthesize(db, tiny_model_dir, c2eval_file, 2)

    def train(out: str) -> tuple[dict, dict, Run]:
        result = run_ccapp(
            *train_args(db, first.id, tiny_model_dir, tmp_path / out, "--max-steps", "1"),
            "--events",
            "jsonl",
            "--json",
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
        started = next(e for e in lines if e.get("event") == "run_started")
        with Store.open(db) as store:
            run = runs.get_run(store, lines[-1]["run_id"])
        return lines[-1], started, run

    summary, started, run = train("a")
    assert summary["metrics"]["pairs"] == first.metrics["pairs"] == 30
    _drop_store(db)
    second = _synthesize(db, tiny_model_dir, c2eval_file, 5)
    pairs = second.metrics["pairs"]
    assert second.id == first.id and pairs > 30
    summary, started, run = train("b")
    assert summary["metrics"]["pairs"] == pairs  # was 30: the first store's cached pairs
    assert started["totals"]["pairs"] == pairs and started["config"]["pairs_rows"] == pairs
    assert run.config["pairs_rows"] == pairs and run.metrics["pairs"] == pairs


class _CancelAfterFirstGroup:
    """A sink that asks the synthesis to stop once a group is stored: a paused Syn run."""

    wants_tokens = False

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel

    def emit(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.cancel.set()

    def tokens(self, deltas: list[tuple[int, int, str]]) -> None:
        pass

    def close(self) -> None:
        pass


def test_pairs_of_a_resumed_syn_run_include_its_new_groups(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "grow.db"
    cancel = threading.Event()
    with Store.open(db) as store:
        synthesis = Synthesis(store, _CancelAfterFirstGroup(cancel), cancel)
        with pytest.raises(Cancelled):
            synthesis.start(
                SynConfig(
                    str(tiny_model_dir),
                    data=str(c2eval_file),
                    limit=3,
                    max_new_tokens=8,
                    device="cpu",
                    batch_size=SLOTS,  # one group per batch: the cancel lands after the first
                )
            )
        run_id = synthesis.run.id  # type: ignore[union-attr]
        before, _ = load_pairs(str(run_id), store)
        done = Synthesis(store).resume(run_id, {})
        after, _ = load_pairs(str(run_id), store)
    assert before.num_rows == 15
    assert after.num_rows == done.metrics["pairs"] == 45
