"""What a user chooses of the demo, each declared once (ccapp.engines.options): `ccapp demo`
and the app's demo form are read off these fields. The loop's own sizes (DemoConfig in
loop.py) follow from them; `--set` reaches those for experiments."""

from __future__ import annotations

from ccapp.engines.data import source_note
from ccapp.engines.generation.backend import MODEL_FIX, model_spec_problem
from ccapp.engines.options import Checked, job_config, option

# The loop's stages, in order: the toy is built and warmed up first; a real model is asked
# benign requests before and after (the helpfulness guard) instead.
TOY_STAGES = ("model", "eval before", "syn", "dpo", "eval after")
REAL_STAGES = ("helpfulness before", "eval before", "syn", "dpo", "eval after", "helpfulness after")


@job_config
class DemoOptions(Checked):
    """the whole loop offline on a toy model: eval → syn → DPO → eval, before/after

    Builds and warms up a small model, evaluates it (heuristic judge), synthesizes pairs,
    trains it with DPO and evaluates it again, all on this machine in minutes. A toy model
    showing the loop's mechanics, not a safety result.
    """

    data: str = option(
        "c2-eval",
        "requests to split into held-out and training: c2-eval, a .jsonl/.json/.parquet "
        "file, or a Hub id[:split]",
        label="Data (requests with harmful responses)",
        placeholder="c2-eval, a file or a Hub id",
        note=source_note,
    )
    model: str | None = option(
        None,
        "run the loop on a real model instead of the toy (e.g. smollm2): LoRA DPO, the "
        "dataset's safe answers, and a helpfulness guard; about 30 minutes on a 2-core CPU",
        metavar="M",
        label="Real model instead of the toy (optional)",
        placeholder="empty: the toy model; e.g. smollm2",
        check=model_spec_problem,
        fix=MODEL_FIX,
    )
    quick: bool = option(
        False,
        "a minute-long smoke run of the same steps (no claim)",
        label="Quick: a minute-long smoke run (no claim)",
        widget="switch",
    )
    seed: int = option(0, "seeds the model, the split and the sampling", label="Seed", minimum=0)
    work_dir: str | None = option(
        None,
        "where the demo's model and files go (default: demo/ in the data folder)",
        metavar="DIR",
    )
