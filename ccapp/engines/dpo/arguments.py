"""The DPOConfig a run trains with, built in one place from everything that decides it.

In order, each over the one before: what ccapp itself needs (checkpoints under
OUTPUT/checkpoints, a log every step for the store, no progress bars), the run's options,
the eval split (`--eval-fraction`: eval every ~tenth of the run), the tracker
(`--report-to`), and last the `--config` file's DPOConfig fields that ccapp has no flag for,
which TRL gets as they are. The file's values of ccapp's own options are already in the
options (flags won there: ccapp.engines.dpo.dpo_yaml).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ccapp.engines.dpo.config import TrainConfig
from ccapp.engines.dpo.dpo_yaml import DpoYaml, check_loss_keys
from ccapp.errors import UserError

EVALS_PER_RUN = 10  # eval points on the curve of a run without eval_steps of its own


def eval_steps(total_steps: int) -> int:
    """Steps between two scorings of the eval split."""
    return max(1, math.ceil(total_steps / EVALS_PER_RUN))


def dpo_arguments(
    config: TrainConfig,
    *,
    output: Path,
    device: str,
    total_steps: int,
    has_eval: bool,
    run_name: str,
    file: DpoYaml | None,
) -> dict[str, Any]:
    """DPOConfig's keyword arguments for this run (see the module docstring)."""
    import torch

    on_cpu = device == "cpu"
    bf16 = (not on_cpu) and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    kwargs: dict[str, Any] = {
        "output_dir": str(output / "checkpoints"),
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_total_limit": 2,
        "disable_tqdm": True,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate,
        "beta": config.beta,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "max_length": config.max_length,
        "save_steps": config.save_steps,
        "seed": config.seed,
        "bf16": bf16,
        "use_cpu": on_cpu,
        "activation_checkpointing": config.gradient_checkpointing,
        "precompute_ref_log_probs": config.precompute_ref,
        # DPO alone can lower the chosen answers' likelihood too (likelihood displacement);
        # an NLL term on them (RPO) keeps the policy writing them.
        "loss_type": ["sigmoid", "sft"] if config.sft_weight else ["sigmoid"],
        "loss_weights": [1.0, config.sft_weight] if config.sft_weight else None,
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": eval_steps(total_steps) if has_eval else None,
        "report_to": [] if config.report_to == "none" else [config.report_to],
        "run_name": run_name,
    }
    if file is not None:
        theirs = file.trainer_args()
        check_loss_keys(theirs, config.sft_weight, file.source)
        strategy = theirs.get("eval_strategy", "no")
        if not has_eval and str(getattr(strategy, "value", strategy)) != "no":
            raise UserError(
                f"{file.source} sets eval_strategy {strategy!s}, and there is no eval split",
                where="--config",
                fix="give --eval-fraction F (e.g. 0.1) to hold out requests to evaluate on",
            )
        kwargs |= theirs
    return kwargs


def build_dpo_config(kwargs: dict[str, Any], file: DpoYaml | None) -> Any:
    """The DPOConfig, or a UserError naming the --config file when TRL refuses what it set."""
    from trl import DPOConfig

    try:
        return DPOConfig(**kwargs)
    except ValueError as exc:
        if file is None:
            raise
        refused = f"DPOConfig refuses the settings with {file.source}: {exc}"
        raise UserError(
            refused, where="--config", fix="change or remove the key it names"
        ) from None


def place_tensorboard(trainer: Any, folder: Path) -> None:
    """TensorBoard's event files go to OUTPUT/tensorboard (a resume adds to them), not under
    the checkpoints, unless TENSORBOARD_LOGGING_DIR says where."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = str(folder)
