"""Where ccapp keeps its files, and the user's settings file.

`CCAPP_HOME` moves everything (config, data, cache) under one folder, which is how tests and
people with several setups keep stores apart. Nothing here touches the disk at import time.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccapp.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

APP_NAME = "ccapp"
C2EVAL_URL = (
    "https://raw.githubusercontent.com/pillowsofwind/Course-Correction/main/eval/test.jsonl"
)


@dataclass(frozen=True)
class Paths:
    """The folders ccapp uses; created on first write, never on import."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path

    # What lives in them, fixed by the three folders.
    config_file: Path = field(init=False)
    default_db: Path = field(init=False)
    models_cache: Path = field(init=False)
    datasets_cache: Path = field(init=False)
    reports_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        places = {
            "config_file": self.config_dir / "config.toml",
            "default_db": self.data_dir / "ccapp.db",
            "models_cache": self.cache_dir / "models",
            "datasets_cache": self.cache_dir / "datasets",
            "reports_dir": self.data_dir / "reports",
        }
        for name, place in places.items():
            object.__setattr__(self, name, place)  # a frozen dataclass's derived fields


def paths() -> Paths:
    home = os.environ.get("CCAPP_HOME")
    if home:
        base = Path(home).expanduser().resolve()
        return Paths(base / "config", base / "data", base / "cache")
    import platformdirs

    return Paths(
        platformdirs.user_config_path(APP_NAME),
        platformdirs.user_data_path(APP_NAME),
        platformdirs.user_cache_path(APP_NAME),
    )


@dataclass(frozen=True)
class Settings:
    """The settings a user may put in config.toml; every field is optional there.

    Layout of the file (all sections optional)::

        [store]
        path = "~/ccapp/ccapp.db"      # the SQLite store (the --db option wins)

        [models]
        device = "auto"                 # cpu | cuda:N | mps | auto
        dtype = "auto"                  # auto | float32 | bfloat16 | float16

        [data]
        c2eval_url = "https://…/test.jsonl"   # where `c2-eval` is downloaded from

        [openai]
        api_key_file = "~/.config/ccapp/openai.key"   # used when OPENAI_API_KEY is unset
    """

    store_path: Path | None = None
    device: str = "auto"
    dtype: str = "auto"
    c2eval_url: str = C2EVAL_URL
    openai_api_key_file: Path | None = None
    source: Path | None = field(default=None, compare=False)


# (section, key) -> (Settings field, expected type)
_KEYS: dict[tuple[str, str], tuple[str, type]] = {
    ("store", "path"): ("store_path", str),
    ("models", "device"): ("device", str),
    ("models", "dtype"): ("dtype", str),
    ("data", "c2eval_url"): ("c2eval_url", str),
    ("openai", "api_key_file"): ("openai_api_key_file", str),
}
_PATH_SETTINGS = {"store_path", "openai_api_key_file"}


def load_settings(file: Path | None = None) -> Settings:
    """Read config.toml; a missing file means defaults, a wrong one is a UserError."""
    file = file or paths().config_file
    if not file.exists():
        return Settings()
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text", where=str(file), fix="save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(
            f"invalid TOML ({exc})", where=str(file), fix="correct the syntax"
        ) from None
    values: dict[str, Any] = {}
    known = ", ".join(f"[{s}] {k}" for s, k in _KEYS)
    for section, table in doc.items():
        if not isinstance(table, dict):
            raise UserError(
                f"'{section}' must be a [section]",
                where=str(file),
                fix=f"known settings are {known}",
            )
        for key, value in table.items():
            if (section, key) not in _KEYS:
                raise UserError(
                    f"unknown setting [{section}] {key}",
                    where=str(file),
                    fix=f"remove it; known settings are {known}",
                )
            name, kind = _KEYS[(section, key)]
            if not isinstance(value, kind):
                raise UserError(
                    f"[{section}] {key} must be a {kind.__name__}, not {type(value).__name__}",
                    where=str(file),
                    fix=f'write it as a quoted string: {key} = "…"',
                )
            text = str(value)  # every setting is a string (checked above)
            if "\x00" in text:  # TOML's \u0000 escape: opening such a path would crash
                raise UserError(
                    f"[{section}] {key} holds a NUL character (\\u0000)",
                    where=str(file),
                    fix="remove it",
                )
            if name in _PATH_SETTINGS and not text.strip():  # "" would be the current folder
                raise UserError(
                    f"[{section}] {key} is empty",
                    where=str(file),
                    fix=f"give a file path, or remove the {key} line",
                )
            values[name] = Path(text).expanduser() if name in _PATH_SETTINGS else text
    return Settings(**values, source=file)


def resolve_db(db_option: str | None, settings: Settings | None = None) -> Path:
    """The store file: --db, else [store] path from config.toml, else the data dir."""
    if db_option:
        return Path(db_option).expanduser()
    settings = settings or load_settings()
    return settings.store_path or paths().default_db
