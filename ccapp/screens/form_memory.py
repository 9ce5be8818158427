"""A form's last launched values, kept in the config folder, so the next form starts from them.

Without it every start reset the eval form's data to `c2-eval`, which fails offline. One
JSON file per form (`<config_dir>/forms/eval.json`, `syn.json`, `train.json`); a value whose name says it is a secret
(`api_key`, `token`, `secret`, `password`) is never written. A file that cannot be read, or that names
fields this version does not know, is ignored for what it cannot give: a form always opens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from ccapp.screens.option_form import OptionTexts

SECRET_WORDS = ("key", "token", "secret", "password")

V = TypeVar("V", bound=OptionTexts)


def memory_file(form: str) -> Path:
    from ccapp.config import paths

    return paths().config_dir / "forms" / f"{form}.json"


def recall(form: str, cls: type[V]) -> V:
    """The form's values as last launched (defaults for what was not remembered)."""
    try:
        saved = json.loads(memory_file(form).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return cls()
    known = cls.defaults()
    if not isinstance(saved, dict):
        return cls()
    values = {
        name: value
        for name, value in saved.items()
        if name in known and type(value) is type(known[name]) and not secret(name)
    }
    return cls(**values)


def remember(form: str, values: OptionTexts) -> None:
    """Keep the launched values (secrets left out); a folder that cannot be written is no
    reason to refuse a launch, so failing to write is silent."""
    kept = {name: value for name, value in vars(values).items() if not secret(name)}
    path = memory_file(form)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except OSError:
        pass


def secret(name: str) -> bool:
    """Whether a field's name says it holds a secret (`api_key`; not `max_new_tokens`)."""
    return bool(set(name.lower().split("_")) & set(SECRET_WORDS))


def forget(values: V, names: tuple[str, ...]) -> V:
    """The values with these fields back at their defaults (fields that would go stale)."""
    if not names:
        return values
    defaults = type(values).defaults()
    return type(values)(**(vars(values) | {name: defaults[name] for name in names}))
