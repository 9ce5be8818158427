"""`ccapp train`: DPO on C2-Syn pairs (LoRA, QLoRA or full), here or under `accelerate launch`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from ccapp.cli.common import add_db_option, open_store
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.errors import UserError

LAUNCH_ONLY = ("--launcher", "--accelerate-config", "--num-processes")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="DPO training on C2-Syn pairs (TRL): LoRA, QLoRA or full",
        description="Train the model to prefer earlier corrections with TRL's DPOTrainer. "
        "The output folder is what ccapp eval --model takes.",
    )
    add_db_option(p)
    p.add_argument(
        "--pairs", help="a syn run id, a folder from ccapp export --format pairs, or a Hub id"
    )
    p.add_argument("--model", help="the model to train: preset, Hugging Face id or folder")
    p.add_argument(
        "--method",
        choices=["lora", "qlora", "full"],
        default="lora",
        help="LoRA (default; the reference is the base with the adapter off), QLoRA (4-bit, "
        "CUDA), or full fine-tuning (with a reference copy, or --precompute-ref)",
    )
    p.add_argument("--lr", type=float, help="learning rate (default: LoRA 5e-5, full 5e-7)")
    p.add_argument("--beta", type=float, default=0.1, help="DPO beta (default 0.1)")
    p.add_argument(
        "--sft-weight",
        type=float,
        default=0.0,
        metavar="W",
        help="add W × the chosen answers' NLL to the DPO loss (RPO; keeps them likely; default 0)",
    )
    p.add_argument("--epochs", type=float, default=1.0, help="epochs over the pairs (default 1)")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps")
    p.add_argument(
        "--batch-size", type=int, default=4, metavar="N", help="pairs per device step (default 4)"
    )
    p.add_argument(
        "--grad-accum",
        type=int,
        default=1,
        metavar="N",
        help="steps per optimizer step (default 1)",
    )
    p.add_argument(
        "--max-length",
        type=int,
        default=1024,
        metavar="N",
        help="tokens per sequence (default 1024)",
    )
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument(
        "--output", metavar="DIR", help="where the trained model goes (default: the data folder)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--precompute-ref",
        action="store_true",
        help="full DPO: compute the reference's log-probs first instead of keeping a copy",
    )
    p.add_argument(
        "--merge", action="store_true", help="LoRA: also write a merged full model to DIR/merged"
    )
    p.add_argument(
        "--gradient-checkpointing", action="store_true", help="less memory, more compute"
    )
    p.add_argument(
        "--save-steps", type=int, default=50, metavar="N", help="a checkpoint every N steps"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda:N or auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument(
        "--launcher",
        choices=["accelerate"],
        help="run under accelerate launch (several GPUs: DDP, DeepSpeed, FSDP)",
    )
    p.add_argument(
        "--accelerate-config", metavar="FILE", help="accelerate's config (accelerate config)"
    )
    p.add_argument("--num-processes", type=int, metavar="N", help="processes for accelerate launch")
    p.add_argument(
        "--resume", type=run_id_arg, metavar="RUN", help="continue a run from its last checkpoint"
    )
    p.add_argument("--events", choices=["jsonl"], help="progress as JSON lines on stdout")
    p.add_argument("--json", action="store_true", help="end with a one-line JSON summary")
    p.set_defaults(handler=run)


def launch_command(
    argv: Sequence[str], config_file: str | None, num_processes: int | None, cpu: bool
) -> list[str]:
    """`accelerate launch … -m ccapp train …` with this command's own arguments, minus the
    launcher's, so the launched processes run exactly the training asked for."""
    inner: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_ONLY:
            skip = "=" not in arg
            continue
        inner.append(arg)
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file:
        command += ["--config_file", config_file]
    if num_processes:
        command += ["--num_processes", str(num_processes)]
    if cpu:
        command.append("--cpu")
    return [*command, "-m", "ccapp", *inner]


def run(args: argparse.Namespace) -> int:
    if args.launcher == "accelerate":
        argv = sys.argv[1:]
        command = launch_command(
            argv, args.accelerate_config, args.num_processes, cpu=args.device == "cpu"
        )
        print("ccapp: launching: " + " ".join(command), file=sys.stderr)
        return subprocess.call(command)
    from ccapp.cli.jobs import cancellation, make_sink, run_job
    from ccapp.engines.dpo.train import TrainConfig, Training
    from ccapp.engines.generation.models import parse_device, parse_dtype
    from ccapp.store import runs

    main_process = _is_main_process()
    if args.resume is None:
        missing = [name for name in ("pairs", "model") if getattr(args, name) is None]
        if missing:
            raise UserError(
                f"missing --{' and --'.join(missing)}",
                fix="e.g. ccapp train --pairs 9 --model qwen_05 --method lora",
            )
        config = TrainConfig(
            pairs=args.pairs,
            model=args.model,
            method=args.method,
            lr=args.lr,
            beta=args.beta,
            epochs=args.epochs,
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            grad_accum=args.grad_accum,
            max_length=args.max_length,
            lora_r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            output=args.output,
            seed=args.seed,
            precompute_ref=args.precompute_ref,
            merge=args.merge,
            device=parse_device(args.device),
            dtype=parse_dtype(args.dtype),
            save_steps=args.save_steps,
            gradient_checkpointing=args.gradient_checkpointing,
            sft_weight=args.sft_weight,
        )
        config.check()
        if config.method == "qlora":
            _check_qlora()
    with open_store(args) as store, cancellation() as cancel:
        training: Any = None

        def run_id() -> int | None:
            return training.run.id if training is not None and training.run else None

        def status() -> str | None:
            rid = run_id()
            return runs.get_run(store, rid).status.value if rid is not None else None

        from ccapp.engines.events import NullSink

        sink = make_sink(args.events, run_id) if main_process else NullSink()
        training = Training(store, sink, cancel, main_process=main_process)
        job = (
            (lambda: training.resume(args.resume))
            if args.resume is not None
            else (lambda: training.start(config))
        )
        return run_job(
            job,
            run_id=run_id,
            kind="train",
            json_summary=args.json and main_process,
            sink=sink,
            resume_hint="ccapp train --resume {}",
            status=status,
        )


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _check_qlora() -> None:
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise UserError(
            "QLoRA needs a CUDA GPU (bitsandbytes 4-bit)",
            where="--method",
            fix="use --method lora on this machine",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError(
            "QLoRA needs the bitsandbytes package", where="--method", fix="pip install bitsandbytes"
        )
