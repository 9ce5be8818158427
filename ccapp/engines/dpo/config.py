"""The settings of a DPO run, each declared once (ccapp.engines.options): `ccapp train`, the
Train form and Run detail are read off these fields."""

from __future__ import annotations

from ccapp.engines.generation import sampling_options as shared
from ccapp.engines.generation.backend import DTYPES, normalize_device, normalize_dtype
from ccapp.engines.options import Checked, Problem, job_config, option, result_settings

METHODS = ("lora", "qlora", "full")
DEFAULT_LR = {"lora": 5e-5, "qlora": 5e-5, "full": 5e-7}
WHAT = "what is trained"
DPO = "DPO"
LORA = "LoRA"
RUNNING = "where and how it runs"


@job_config
class TrainConfig(Checked):
    """Everything a DPO run needs."""

    pairs: str = option(
        kw_only=False,
        help="a syn run id, a folder from ccapp export --format pairs, or a Hub id",
        label="Pairs: a syn run id or an exported folder",
        placeholder="e.g. 9",
        form_default="",
        group=WHAT,
    )
    model: str = option(
        kw_only=False,
        help="the model to train: preset, Hugging Face id or folder",
        label="Model to train",
        form_default="tiny",
        group=WHAT,
    )
    method: str = option(
        default="lora",
        choices=METHODS,
        choice_labels=(
            ("lora", "LoRA (reference: the base, adapter off)"),
            ("full", "full (with a reference copy)"),
            ("qlora", "QLoRA (4-bit, CUDA)"),
        ),
        help="LoRA (default; the reference is the base with the adapter off), QLoRA (4-bit, "
        "CUDA), or full fine-tuning (with a reference copy, or --precompute-ref)",
        label="Method",
        widget="select",
        shown=True,
        group=WHAT,
    )
    lr: float | None = option(  # default by method: LoRA 5e-5, full 5e-7
        default=None,
        help="learning rate (default: LoRA 5e-5, full 5e-7)",
        label="Learning rate",
        placeholder="LoRA 5e-5",
        above=0,
        fix="give a learning rate above 0",
        shown="learning_rate",
        group=DPO,
        row="dpo",
    )
    beta: float = option(
        default=0.1,
        help="DPO beta",
        label="Beta",
        above=0,
        fix="give a beta above 0 (0.1 is usual)",
        shown=True,
        group=DPO,
        row="dpo",
    )
    epochs: float = option(
        default=1.0,
        help="epochs over the pairs",
        label="Epochs",
        above=0,
        fix="give more than 0",
        shown=True,
        group=DPO,
        row="dpo",
    )
    max_steps: int | None = option(
        default=None,
        metavar="N",
        help="stop after N optimizer steps",
        minimum=1,
        shown=True,
        group=DPO,
    )
    batch_size: int = option(
        default=4,
        metavar="N",
        help="pairs per device step",
        label="Batch size",
        minimum=1,
        shown=True,
        group=DPO,
        row="batches",
    )
    grad_accum: int = option(
        default=1, metavar="N", help="steps per optimizer step", minimum=1, shown=True, group=DPO
    )
    max_length: int = option(
        default=1024,
        metavar="N",
        help="tokens per sequence",
        label="Max length",
        minimum=16,
        fix="give at least 16 tokens",
        shown=True,
        group=DPO,
        row="batches",
    )
    sft_weight: float = option(  # > 0 adds the chosen response's NLL to the DPO loss (RPO)
        default=0.0,
        metavar="W",
        help="add W × the chosen answers' NLL to the DPO loss (RPO; keeps them likely; default 0)",
        minimum=0,
        fix="give 0 (plain DPO) or more",
        group=DPO,
    )
    seed: int = shared.seed(group=DPO)
    lora_r: int = option(
        default=16, metavar="R", help="LoRA rank", minimum=1, shown=True, group=LORA
    )
    lora_alpha: int = option(
        default=32,
        metavar="A",
        help="LoRA scale",
        minimum=1,
        fix="give at least 1 (2 × --lora-r is usual)",
        group=LORA,
    )
    lora_dropout: float = option(
        default=0.05, metavar="P", help="dropout on the LoRA layers", minimum=0, below=1, group=LORA
    )
    merge: bool = option(
        default=False,
        help="LoRA: also write a merged full model to DIR/merged",
        decides_results=False,
        group=LORA,
    )
    precompute_ref: bool = option(
        default=False,
        help="full DPO: compute the reference's log-probs first instead of keeping a copy",
        group=RUNNING,
    )
    output: str | None = option(  # default: models/train-RUN in the data folder
        default=None,
        metavar="DIR",
        help="where the trained model goes (default: the data folder)",
        label="Output folder (optional)",
        widget="path",
        decides_results=False,
        group=RUNNING,
    )
    device: str = option(
        default="auto",
        help="cpu, cuda:N or auto",
        convert=normalize_device,
        decides_results=False,
        shown=True,
        group=RUNNING,
    )
    dtype: str = option(
        default="auto",
        help="auto, float32, bfloat16 or float16",
        choices=DTYPES,
        convert=normalize_dtype,
        group=RUNNING,
    )
    save_steps: int = option(
        default=50,
        metavar="N",
        help="a checkpoint every N steps",
        minimum=1,
        decides_results=False,
        group=RUNNING,
    )
    gradient_checkpointing: bool = option(
        default=False, help="less memory, more compute", decides_results=False, group=RUNNING
    )

    def job_problems(self) -> list[Problem]:
        """Only LoRA adapters are merged (found before the pairs or the model load)."""
        if self.merge and self.method == "full":
            return [Problem("merge", "invalid value True", "only LoRA adapters are merged")]
        return []

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]


RESULT_SETTINGS = result_settings(TrainConfig)
