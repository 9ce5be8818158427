"""`ccapp train`: DPO on C2-Syn pairs (LoRA, QLoRA or full), here or under `accelerate launch`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from ccapp.cli.common import add_db_option, open_store
from ccapp.cli.options import add_options, given
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.engines.dpo.config import TrainConfig
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
    add_options(p, TrainConfig)
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
    from ccapp.engines.dpo.train import Training
    from ccapp.store import runs

    main_process = _is_main_process()
    if args.resume is None:
        options = given(args, TrainConfig)
        missing = [name for name in ("pairs", "model") if name not in options]
        if missing:
            raise UserError(
                f"missing --{' and --'.join(missing)}",
                fix="e.g. ccapp train --pairs 9 --model qwen_05 --method lora",
            )
        config = TrainConfig(**options)
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
