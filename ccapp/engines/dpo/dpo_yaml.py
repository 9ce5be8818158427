"""`ccapp train --config dpo.yaml`: TRL's own YAML form of a DPOConfig, read as TrlParser reads it.

A TRL user's recipe file is flat keys, one per DPOConfig field (plus TrlParser's `env:`
mapping of environment variables), typed by the field's own command-line parser, so that
`learning_rate: 5e-5` (a string to YAML) is the float TrlParser makes of it. Keys fall in
three kinds, and this module is where each kind's rule lives:

- a key one of ccapp's own flags sets (`learning_rate` is `--lr`, `output_dir` is `--output`,
  …: `FLAG_FIELDS`) becomes that option's value, unless the flag is given: flags win;
- a key ccapp decides itself (`CCAPP_DECIDES`) is refused with the flag to use instead;
- any other DPOConfig field is handed to DPOConfig as it is, over ccapp's own setting of it
  (`lr_scheduler_type`, `warmup_steps`, `logging_steps`, `bf16`, `eval_steps`, …).

An unknown key is refused naming the file, the key and the closest DPOConfig field. The
file's text is stored with the run, so that a resume trains with what the run started with.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccapp.engines.dpo.config import TrainConfig
from ccapp.engines.options import declared_field, parse_text
from ccapp.errors import UserError

# DPOConfig key (or TRL ModelConfig key, for the LoRA ones) -> the TrainConfig field whose flag
# sets the same thing.
FLAG_FIELDS = {
    "output_dir": "output",
    "learning_rate": "lr",
    "beta": "beta",
    "num_train_epochs": "epochs",
    "max_steps": "max_steps",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accum",
    "max_length": "max_length",
    "seed": "seed",
    "save_steps": "save_steps",
    "precompute_ref_log_probs": "precompute_ref",
    "activation_checkpointing": "gradient_checkpointing",
    "gradient_checkpointing": "gradient_checkpointing",  # transformers 5's deprecated alias
    "report_to": "report_to",
    "lora_r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
}
# Keys ccapp sets from its own state, with what to do instead.
CCAPP_DECIDES = {
    "resume_from_checkpoint": "resume the run with ccapp train --resume RUN",
    "use_cpu": "choose the device with --device cpu",
    "config": "give one file with --config",
}
# Keys of TRL's other argument classes that recipe files carry, with ccapp's way to say them.
OTHER_TRL_KEYS = {
    "model_name_or_path": "give the model with --model",
    "dataset_name": "give the pairs with --pairs",
    "use_peft": "choose --method lora, qlora or full",
    "load_in_4bit": "use --method qlora",
}
LOSS_KEYS = ("loss_type", "loss_weights")  # what --sft-weight builds


@dataclass(frozen=True)
class DpoYaml:
    """A DPO YAML file, read and checked: its text, its typed values and its `env:`."""

    source: str  # how messages name it: the path, or the run it was stored with
    text: str
    values: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def flag_values(self) -> dict[str, Any]:
        """The values of ccapp's own options this file sets, by TrainConfig field name."""
        return {FLAG_FIELDS[k]: v for k, v in self.values.items() if k in FLAG_FIELDS}

    def trainer_args(self) -> dict[str, Any]:
        """The DPOConfig fields handed to TRL as they are (ccapp has no flag for them)."""
        return {k: v for k, v in self.values.items() if k not in FLAG_FIELDS}

    def overridden(self, config: Any) -> list[str]:
        """`key value → --flag value` for each value of this file a flag replaced, so a run
        says which won."""
        out = []
        for key, value in self.values.items():
            name = FLAG_FIELDS.get(key)
            if name is None:
                continue
            used = config.learning_rate if name == "lr" else getattr(config, name)
            if name == "output" and value is not None and used is not None:
                value, used = (str(Path(v).expanduser().resolve()) for v in (value, used))
            if used != value:
                out.append(f"{key} {value!r} → {declared_field(type(config), name).flag} {used!r}")
        return out


def with_file(options: dict[str, Any]) -> TrainConfig:
    """A new run's config from the options given: where `--config` names a file, its values
    of ccapp's own options fill those whose flags were not given (flags win), and a value
    of the file's that the option refuses is reported as the file's."""
    if not options.get("dpo_config"):
        return TrainConfig(**options)
    file = read_dpo_yaml(options["dpo_config"])
    from_file = {k: v for k, v in file.flag_values().items() if k not in options}
    config = TrainConfig(**(from_file | options))
    for problem in config.problems():
        if problem.field in from_file:
            key = next(k for k in file.values if FLAG_FIELDS.get(k) == problem.field)
            raise UserError(
                f"{file.source}: {key}: {problem.message}", where="--config", fix=problem.fix
            )
    return config


def read_dpo_yaml(path: str) -> DpoYaml:
    """The file `--config` names, read and checked (UserError naming the file otherwise)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"cannot read {path} ({exc.strerror or type(exc).__name__})"
            if isinstance(exc, OSError)
            else f"{path} is not UTF-8 text",
            where="--config",
            fix="give a YAML file of DPOConfig fields, e.g. learning_rate: 5.0e-5",
        ) from None
    return parse_dpo_yaml(text, str(file))


def parse_dpo_yaml(text: str, source: str) -> DpoYaml:
    """The checked, typed content of a DPO YAML text (`source` names it in messages)."""
    import yaml

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(
            f"{source} is not valid YAML{line}",
            where="--config",
            fix="write flat `field: value` lines, as TRL's recipe files do",
        ) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise UserError(
            f"{source} holds a YAML {type(loaded).__name__}, not a mapping of DPOConfig fields",
            where="--config",
            fix="write flat `field: value` lines, e.g. learning_rate: 5.0e-5",
        )
    env = loaded.pop("env", None) or {}
    if not isinstance(env, dict):
        raise UserError(
            f"{source}: env is not a mapping",
            where="--config",
            fix="write env: as NAME: value lines (environment variables), as TrlParser reads it",
        )
    values = _typed(loaded, source)
    return DpoYaml(source, text, values, {str(k): str(v) for k, v in env.items()})


def _typed(loaded: dict[Any, Any], source: str) -> dict[str, Any]:
    """Each key checked and typed: ccapp's own options by their declarations, the other
    DPOConfig fields by TRL's argument parser (what `TrlParser` does with a config file)."""
    import argparse

    from transformers import HfArgumentParser
    from trl import DPOConfig

    fields = {f.name for f in DPOConfig.__dataclass_fields__.values() if f.init}
    for key in loaded:
        _check_key(str(key), fields, source)
    theirs = {k: v for k, v in loaded.items() if k not in FLAG_FIELDS}
    dataclass_type: Any = DPOConfig  # a dataclass to argparse, whatever its stubs say
    parser = HfArgumentParser(dataclass_type, exit_on_error=False)
    for action in parser._actions:  # as TrlParser.set_defaults_with_config
        if action.dest in theirs:
            action.default = theirs[action.dest]
    try:
        parsed = parser.parse_args([])
    except argparse.ArgumentError as exc:
        key = (exc.argument_name or "").split("/")[0].lstrip("-").replace("-", "_")
        raise UserError(
            f"{source}: {key}: {exc.message}",
            where="--config",
            fix=f"give {key} a value DPOConfig takes (see trl's DPOConfig)",
        ) from None
    typed = {k: getattr(parsed, k) for k in theirs}
    for action in parser._actions:  # argparse checks choices on typed text only, not defaults
        value = typed.get(action.dest)
        if action.choices is not None and value is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise UserError(
                f"{source}: {action.dest}: {value!r} is not one of its choices",
                where="--config",
                fix=f"use one of {choices}",
            )
    typed |= {k: _flag_value(k, v, source) for k, v in loaded.items() if k in FLAG_FIELDS}
    return typed


def _check_key(key: str, fields: set[str], source: str) -> None:
    if key in CCAPP_DECIDES:
        raise UserError(
            f"{source}: {key} is set by ccapp itself", where="--config", fix=CCAPP_DECIDES[key]
        )
    if key in OTHER_TRL_KEYS:
        raise UserError(
            f"{source}: {key} is not a DPOConfig field", where="--config", fix=OTHER_TRL_KEYS[key]
        )
    if key in fields or key in FLAG_FIELDS:
        return
    closest = difflib.get_close_matches(key, sorted(fields | set(FLAG_FIELDS)), n=1, cutoff=0)
    raise UserError(
        f"{source}: unknown key {key!r}: not a DPOConfig field (closest: {closest[0]})",
        where="--config",
        fix=f"rename it to {closest[0]} if that is what you meant, or remove it",
    )


def _flag_value(key: str, value: Any, source: str) -> Any:
    """A value for one of ccapp's options, in TRL's spelling (report_to as a one-item list,
    max_steps -1 for no limit) made ccapp's, and parsed as the option parses its text."""
    d = declared_field(TrainConfig, FLAG_FIELDS[key])
    if key == "report_to" and isinstance(value, list):
        if len(value) > 1:
            raise UserError(
                f"{source}: report_to lists {len(value)} trackers; ccapp reports to one",
                where="--config",
                fix="keep one of tensorboard, wandb, trackio or none",
            )
        value = value[0] if value else "none"
    if key == "max_steps" and value in (-1, "-1"):
        return None
    try:
        if d.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"'{value}' is not true or false")
            return value
        return parse_text(d, str(value)) if value is not None else None
    except ValueError as exc:
        raise UserError(
            f"{source}: {key}: {exc}", where="--config", fix=f"give {key} as {d.flag} takes it"
        ) from None


def check_loss_keys(values: dict[str, Any], sft_weight: float, source: str) -> None:
    """--sft-weight builds the loss list itself; a file that also sets it is refused rather
    than one of them silently losing."""
    both = [k for k in LOSS_KEYS if k in values]
    if both and sft_weight:
        raise UserError(
            f"{source} sets {' and '.join(both)} and --sft-weight builds them too",
            where="--config",
            fix="drop --sft-weight (give loss_type and loss_weights in the file), or drop them "
            "from the file",
        )
