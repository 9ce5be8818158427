"""`ccapp train`: DPO on C2-Syn pairs (LoRA, QLoRA or full), here or under `accelerate launch`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from ccapp.cli.jobs import JobCommand
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.engines.dpo.config import TrainConfig
from ccapp.errors import UserError

LAUNCH_ONLY = ("--launcher", "--accelerate-config", "--num-processes")


def new_run_config(options: dict[str, Any]) -> TrainConfig:
    """A new run's config: the --config file's values where their flags are not given, and
    QLoRA refused where it cannot run (before the pairs or the model load)."""
    from ccapp.engines.dpo.dpo_yaml import with_file

    config = with_file(options)
    if config.method == "qlora":
        _check_qlora()
    return config


COMMAND = JobCommand(
    "train",
    TrainConfig,
    "ccapp.engines.dpo.train:Training",
    example="ccapp train --pairs 9 --model qwen_05 --method lora",
    resume_help="continue a run from its last checkpoint",
    resume_type=run_id_arg,
    new_config=new_run_config,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = COMMAND.register(subparsers)
    p.add_argument(
        "--launcher",
        choices=["accelerate"],
        help="run under accelerate launch (several GPUs: DDP, DeepSpeed, FSDP)",
    )
    p.add_argument(
        "--accelerate-config", metavar="FILE", help="accelerate's config (accelerate config)"
    )
    p.add_argument("--num-processes", type=int, metavar="N", help="processes for accelerate launch")
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
    return COMMAND.run(args, main_process=_is_main_process())


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
