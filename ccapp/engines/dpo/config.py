"""The settings of a DPO run, each declared once (ccapp.engines.options): `ccapp train`, the
Train form and Run detail are read off these fields."""

from __future__ import annotations

import importlib.util

from ccapp.engines.generation import sampling_options as shared
from ccapp.engines.generation.backend import (
    DTYPES,
    MODEL_FIX,
    MODEL_HELP,
    model_spec_problem,
    normalize_device,
    normalize_dtype,
)
from ccapp.engines.options import Checked, Problem, job_config, option, result_settings, section

METHODS = ("lora", "qlora", "full")
# --report-to: the trackers TRL hands its logs to, and the packages each needs (any one).
REPORTERS = {
    "none": (),
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "trackio": ("trackio",),
}
DEFAULT_LR = {"lora": 5e-5, "qlora": 5e-5, "full": 5e-7}
DPO = "DPO"
WHAT = "what is trained"
what = section(WHAT)
dpo = section(DPO)
lora = section("LoRA")
running = section("where and how it runs")


@job_config
class TrainConfig(Checked):
    """DPO training on C2-Syn pairs (TRL): LoRA, QLoRA or full

    Train the model to prefer earlier corrections with TRL's DPOTrainer. The output folder is
    what ccapp eval --model takes. --config takes a TRL DPOConfig YAML; flags given override it.
    """

    pairs: str = option(
        kw_only=False,
        help="a syn run id, a folder from ccapp export --format pairs, or a Hub id",
        label="Pairs: a syn run id or an exported folder",
        placeholder="e.g. 9",
        group=WHAT,
    )
    model: str = option(
        kw_only=False,
        help=MODEL_HELP,
        label="Model to train",
        form_default="tiny",
        group=WHAT,
        check=model_spec_problem,
        fix=MODEL_FIX,
    )
    revision: str | None = what(
        None, "the Hub model's branch, tag or commit (default: main)", metavar="REV"
    )
    method: str = what(
        "lora",
        "LoRA (default; the reference is the base with the adapter off), QLoRA (4-bit, "
        "CUDA), or full fine-tuning (with a reference copy, or --precompute-ref)",
        choices=METHODS,
        choice_labels=(
            ("lora", "LoRA (reference: the base, adapter off)"),
            ("full", "full (with a reference copy)"),
            ("qlora", "QLoRA (4-bit, CUDA)"),
        ),
        label="Method",
        widget="select",
        shown=True,
    )
    lr: float | None = dpo(  # default by method: LoRA 5e-5, full 5e-7
        None,
        "learning rate (default: LoRA 5e-5, full 5e-7)",
        label="Learning rate",
        placeholder="LoRA 5e-5",
        above=0,
        shown="learning_rate",
        row="dpo",
    )
    beta: float = dpo(
        0.1,
        "DPO beta",
        label="Beta",
        above=0,
        fix="give a beta above 0 (0.1 is usual)",
        shown=True,
        row="dpo",
    )
    epochs: float = dpo(
        1.0, "epochs over the pairs", label="Epochs", above=0, shown=True, row="dpo"
    )
    max_steps: int | None = dpo(
        None,
        "stop after N optimizer steps",
        minimum=1,
        shown=True,
        label="Max steps (default: epochs)",
        placeholder="all",
        row="steps",
    )
    batch_size: int = dpo(
        4, "pairs per device step", label="Batch size", minimum=1, shown=True, row="batches"
    )
    grad_accum: int = dpo(1, "steps per optimizer step", minimum=1, shown=True)
    max_length: int = dpo(
        1024, "tokens per sequence", label="Max length", minimum=16, shown=True, row="batches"
    )
    sft_weight: float = dpo(  # > 0 adds the chosen response's NLL to the DPO loss (RPO)
        0.0,
        "add W × the chosen answers' NLL to the DPO loss (RPO; keeps them likely; default 0)",
        metavar="W",
        minimum=0,
        fix="give 0 (plain DPO) or more",
    )
    seed: int = shared.seed(group=DPO)
    eval_fraction: float = dpo(
        0.0,
        "hold out F of the requests, with all their pairs, and log eval loss and reward "
        "accuracy on them (default 0: no eval split)",
        metavar="F",
        minimum=0,
        below=1,
        label="Eval fraction (0: none)",
        row="steps",
    )
    dpo_config: str | None = dpo(
        None,
        "any TRL DPOConfig fields, in TRL's YAML form (flat keys, as TrlParser reads them); "
        "flags given here override it",
        flag="--config",
        metavar="YAML",
    )
    lora_r: int = lora(16, "LoRA rank", metavar="R", minimum=1, shown=True)
    lora_alpha: int = lora(
        32, "LoRA scale", metavar="A", minimum=1, fix="give at least 1 (2 × --lora-r is usual)"
    )
    lora_dropout: float = lora(0.05, "dropout on the LoRA layers", metavar="P", minimum=0, below=1)
    merge: bool = lora(
        False, "LoRA: also write a merged full model to DIR/merged", decides_results=False
    )
    precompute_ref: bool = running(
        False, "full DPO: compute the reference's log-probs first instead of keeping a copy"
    )
    output: str | None = running(  # default: models/train-RUN in the data folder
        None,
        "where the trained model goes (default: the data folder)",
        metavar="DIR",
        label="Output folder (optional)",
        widget="path",
        decides_results=False,
    )
    device: str = running(
        "auto", "cpu, cuda:N or auto", convert=normalize_device, decides_results=False, shown=True
    )
    dtype: str = running(
        "auto", "auto, float32, bfloat16 or float16", choices=DTYPES, convert=normalize_dtype
    )
    save_steps: int = running(50, "a checkpoint every N steps", minimum=1, decides_results=False)
    gradient_checkpointing: bool = running(
        False, "less memory, more compute", decides_results=False
    )
    report_to: str = running(
        "none",
        "also send the logs to tensorboard (OUTPUT/tensorboard), wandb or trackio (TRL's "
        "report_to; default none)",
        choices=tuple(REPORTERS),
        decides_results=False,
        label="Report to",
        widget="select",
    )

    def job_problems(self) -> list[Problem]:
        """Only LoRA adapters are merged, and a tracker's package must be installed (found
        before the pairs or the model load, not by TRL after them)."""
        problems = []
        if self.merge and self.method == "full":
            problems.append(Problem("merge", "invalid value True", "only LoRA adapters are merged"))
        packages = REPORTERS.get(self.report_to, ())
        if packages and not any(importlib.util.find_spec(name) for name in packages):
            problems.append(
                Problem(
                    "report_to",
                    f"reporting to {self.report_to} needs the {packages[0]} package, which is "
                    "not installed",
                    f"pip install {packages[0]}, or use --report-to none",
                )
            )
        return problems

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]


RESULT_SETTINGS = result_settings(TrainConfig)
