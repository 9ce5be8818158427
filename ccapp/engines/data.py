"""Reading harmful requests in PKU-SafeRLHF row format, from files, the Hub, or `c2-eval`.

A row is `{prompt, response_0, response_1, is_response_0_safe, is_response_1_safe, …}`; its
harmful response is `response_0` when that is unsafe, else `response_1`. Every problem is
reported with the file and line it comes from, because a 50K-row file with one bad line
must cost the user one edit, not an afternoon.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccapp.config import Settings, load_settings, paths
from ccapp.errors import UserError

C2EVAL_NAME = "c2-eval"
C2EVAL_SHA256 = "a9f22982e3f7f56309db81a56c532f556ec4d42356823ebb10f98d21a3c6e5c3"
C2EVAL_FILE = "c2eval_test.jsonl"
FILE_SUFFIXES = (".jsonl", ".json", ".parquet")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?$")
_LENIENT_FIX = "correct the row, or pass --lenient to skip bad rows and count them"


@dataclass(frozen=True)
class Row:
    """One harmful request with its harmful (and, when known, safe) response."""

    index: int  # 0-based position among the source's rows
    where: str  # "file.jsonl:37", for messages
    request: str
    harmful_response: str
    safe_response: str | None
    # Every response marked unsafe, response_0 first: C2-Syn follows the paper in taking the
    # first one that is long enough, which need not be `harmful_response`.
    unsafe_responses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    source: str  # what the user asked for: a path, a hub id, or c2-eval
    location: str  # the file read, or hub id[split]
    rows: list[Row]
    sha256: str | None  # of the file's bytes; None for Hub datasets
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows skipped (lenient)


class RowError(ValueError):
    """A row that does not hold a usable harmful request; carries the reason class."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(detail)


@dataclass(frozen=True)
class DataSource:
    """What a --data spec names, decided once for the loader, the forms' check and their
    note: nothing, the paper's set, a local path, a Hub dataset, or no such file."""

    kind: str  # "none" | "c2eval" | "path" | "hub" | "missing"
    spec: str

    @property
    def path(self) -> Path:
        return Path(self.spec).expanduser()

    @property
    def hub_id(self) -> str:
        return self.spec.partition(":")[0]


ANY_DATA = f"{C2EVAL_NAME}, a .jsonl/.json/.parquet file, or a Hub id[:split]"


def data_source(spec: str) -> DataSource:
    """Classify a --data spec without reading it (a path is looked at, never opened)."""
    spec = spec.strip()
    if not spec:  # Path("") is the current folder: say what is missing instead
        return DataSource("none", spec)
    if spec == C2EVAL_NAME:
        return DataSource("c2eval", spec)
    path = Path(spec).expanduser()
    if path.exists():
        return DataSource("path", spec)
    if path.suffix.lower() in FILE_SUFFIXES or not _HUB_ID.match(spec):
        return DataSource("missing", spec)
    return DataSource("hub", spec)


def load_dataset_rows(
    spec: str, *, lenient: bool = False, settings: Settings | None = None
) -> Dataset:
    """Resolve `spec` (c2-eval, a local file, or a Hub id[:split]) and read its rows."""
    source = data_source(spec)
    if source.kind == "none":
        raise UserError("no data given", where="--data", fix=f"give {ANY_DATA}")
    if source.kind == "missing":
        raise UserError(
            "no such file",
            where=source.spec,
            fix=f"pass an existing .jsonl/.json/.parquet file, a Hub id such as "
            f"PKU-Alignment/PKU-SafeRLHF[:split], or {C2EVAL_NAME}",
        )
    if source.kind == "hub":
        return _read_hub(source.spec, lenient)
    path = ensure_c2eval(settings or load_settings()) if source.kind == "c2eval" else source.path
    return _read_file(path, source.spec, lenient)


def data_problem(spec: str) -> str | None:
    """Why `spec` cannot be a --data, without reading it: for the forms, as the user types
    (the command line lets the loader say it, naming the file and the line)."""
    source = data_source(spec)
    if source.kind == "path" and source.path.is_dir():
        return "a folder, not a data file: use a .jsonl, .json or .parquet file in it"
    if source.kind == "path" and source.path.suffix.lower() not in FILE_SUFFIXES:
        return "use a .jsonl, .json or .parquet file"
    if source.kind in ("none", "missing"):
        return f"no such file; use {ANY_DATA}"
    return None


def source_note(spec: str) -> str:
    """Where a --data would be read from, and whether that needs the network: a form shows
    it under its data field, so that an offline user is told before launching, not after
    the model has loaded. Reads no file and touches no network."""
    source = data_source(spec)
    offline = "offline, give a .jsonl/.json/.parquet file"
    if source.kind == "c2eval":
        if c2eval_cache_path().is_file():
            return f"{C2EVAL_NAME}: the paper's 500 rows, cached at {c2eval_cache_path()}"
        return f"{C2EVAL_NAME}: not cached yet, so it is downloaded once (needs the network); {offline}"
    if source.kind == "path" and source.path.is_file():
        size = source.path.stat().st_size
        shown = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"
        return f"found: a local file of {shown}"
    if source.kind == "hub":
        if hub_dataset_cached(source.hub_id):
            return f"{source.hub_id}: from the Hugging Face Hub's cache on this machine"
        return (
            f"{source.hub_id}: not in the Hub cache, so it is downloaded (needs the network); "
            f"{offline}"
        )
    return ANY_DATA


def hub_dataset_cached(hub_id: str) -> bool:
    """Whether the Hub's cache holds files of this dataset (where `datasets` downloads them),
    looked up by its folder's name without importing huggingface_hub."""
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    hub = Path(os.environ.get("HF_HUB_CACHE", home / "hub")).expanduser()
    owner, _, name = hub_id.partition("/")
    return (hub / f"datasets--{owner}--{name}").is_dir()


def parse_row(obj: Any) -> tuple[str, str, str | None]:
    """(request, harmful response, safe response or None) from one PKU-SafeRLHF row."""
    if not isinstance(obj, dict):
        raise RowError("not an object", f"expected a JSON object, got {_json_type(obj)}")
    for name in ("prompt", "response_0", "response_1"):
        if name not in obj:
            raise RowError("missing field", f"missing field '{name}'")
        if not isinstance(obj[name], str):
            raise RowError(
                "mistyped field", f"field '{name}' must be a string, got {_json_type(obj[name])}"
            )
    for name in ("is_response_0_safe", "is_response_1_safe"):
        if name not in obj:
            raise RowError("missing field", f"missing field '{name}'")
        if not isinstance(obj[name], bool):
            raise RowError(
                "mistyped field",
                f"field '{name}' must be true or false, got {_json_type(obj[name])}",
            )
    request = obj["prompt"].strip()
    if not request:
        raise RowError("empty prompt", "field 'prompt' is empty")
    if not obj["is_response_0_safe"]:
        harmful, other, other_safe = obj["response_0"], obj["response_1"], obj["is_response_1_safe"]
    elif not obj["is_response_1_safe"]:
        harmful, other, other_safe = obj["response_1"], obj["response_0"], True
    else:
        raise RowError(
            "no unsafe response", "both responses are marked safe, so there is no harmful response"
        )
    if not harmful.strip():
        raise RowError("empty harmful response", "the unsafe response is empty")
    safe = other if other_safe and other.strip() else None
    return request, harmful.strip(), safe


def unsafe_responses(obj: dict[str, Any]) -> tuple[str, ...]:
    """The non-empty responses of a row (already checked by parse_row) marked unsafe, in order."""
    return tuple(
        obj[f"response_{i}"].strip()
        for i in (0, 1)
        if not obj[f"is_response_{i}_safe"] and obj[f"response_{i}"].strip()
    )


def _read_file(path: Path, source: str, lenient: bool) -> Dataset:
    if path.is_dir():
        raise UserError("is a folder", where=str(path), fix="pass a .jsonl, .json or .parquet file")
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise UserError(
            f"unsupported file type '{suffix or '(none)'}'",
            where=str(path),
            fix="use .jsonl (one JSON object per line), .json (a list) or .parquet",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror})", where=str(path)) from None
    if not raw.strip():
        raise UserError("the file is empty", where=str(path), fix="pass a file with rows")
    if suffix == ".jsonl":
        records = _jsonl_records(raw, path)
    elif suffix == ".json":
        records = _json_records(raw, path)
    else:
        records = _parquet_records(path)
    rows, skipped = _collect(records, lenient)
    if not rows:
        detail = ", ".join(f"{n} {reason}" for reason, n in skipped.items())
        raise UserError(
            f"no usable rows ({detail})" if detail else "no rows",
            where=str(path),
            fix="give a file with at least one valid row",
        )
    return Dataset(
        source=source,
        location=str(path),
        rows=rows,
        sha256=hashlib.sha256(raw).hexdigest(),
        skipped=skipped,
    )


def _collect(records: Iterable[tuple[str, Any]], lenient: bool) -> tuple[list[Row], dict[str, int]]:
    """Validate records; a bad one is an error, or a counted skip when lenient."""
    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    for where, obj in records:
        try:
            if isinstance(obj, RowError):
                raise obj
            request, harmful, safe = parse_row(obj)
        except RowError as exc:
            if lenient:
                skipped[exc.reason] += 1
                continue
            raise UserError(str(exc), where=where, fix=_LENIENT_FIX) from None
        rows.append(Row(len(rows), where, request, harmful, safe, unsafe_responses(obj)))
    return rows, dict(skipped)


def _jsonl_records(raw: bytes, path: Path) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}:{number}"
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield (
                where,
                RowError(
                    "not UTF-8", f"not UTF-8 text (byte {exc.start + 1}); save the file as UTF-8"
                ),
            )
            continue
        if not text.strip():
            continue
        try:
            yield where, json.loads(text)
        except json.JSONDecodeError as exc:
            yield (
                where,
                RowError("not JSON", f"not a JSON object ({exc.msg}, column {exc.colno})"),
            )


def _json_records(raw: bytes, path: Path) -> Iterator[tuple[str, Any]]:
    """Elements of a top-level JSON list, each with the line where it starts."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(
            "not UTF-8 text", where=f"{path}:{line}", fix="save the file as UTF-8"
        ) from None
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if not text.startswith("[", pos):
        raise UserError(
            "expected a JSON list of rows",
            where=f"{path}:{text.count(chr(10), 0, pos) + 1}",
            fix="write the rows as [ {...}, {...} ] or use one object per line in a .jsonl file",
        )
    pos = _skip_ws(text, pos + 1)
    if text.startswith("]", pos):
        return
    while True:
        line = text.count("\n", 0, pos) + 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"invalid JSON ({exc.msg}, column {exc.colno})",
                where=f"{path}:{exc.lineno}",
                fix="correct the syntax",
            ) from None
        yield f"{path}:{line}", obj
        pos = _skip_ws(text, pos)
        if text.startswith(",", pos):
            pos = _skip_ws(text, pos + 1)
        elif text.startswith("]", pos):
            if text[pos + 1 :].strip():
                line = text.count("\n", 0, pos) + 1
                raise UserError("text after the closing ]", where=f"{path}:{line}", fix="remove it")
            return
        else:
            line = text.count("\n", 0, pos) + 1
            raise UserError(
                "expected ',' or ']' between rows", where=f"{path}:{line}", fix="correct the syntax"
            )


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _parquet_records(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(
            f"not a readable Parquet file ({exc})",
            where=str(path),
            fix="write it again with pandas/pyarrow, or convert it to .jsonl",
        ) from None
    number = 0
    for batch in reader.iter_batches(batch_size=4096):
        for obj in batch.to_pylist():
            number += 1
            yield f"{path}: row {number}", obj


def _read_hub(spec: str, lenient: bool) -> Dataset:
    hub_id, _, split = spec.partition(":")
    split = split or "train"
    try:
        import datasets

        ds = datasets.load_dataset(hub_id, split=split)
    except Exception as exc:  # network, auth, missing split: all reach the user the same way
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot load the dataset from the Hugging Face Hub ({reason})",
            where=spec,
            fix="check the id, the split (ID:SPLIT) and your connection, or pass a local "
            ".jsonl/.json/.parquet file",
        ) from None
    records = ((f"{hub_id}[{split}] row {i + 1}", obj) for i, obj in enumerate(ds))
    rows, skipped = _collect(records, lenient)
    if not rows:
        raise UserError("no usable rows", where=spec)
    return Dataset(spec, f"{hub_id}[{split}]", rows, None, skipped)


def c2eval_cache_path() -> Path:
    return paths().datasets_cache / C2EVAL_FILE


def ensure_c2eval(settings: Settings) -> Path:
    """The paper's 500-row test set: the cached copy, else downloaded once and verified."""
    target = c2eval_cache_path()
    manual_fix = (
        f"on an offline machine, download {settings.c2eval_url} elsewhere and pass it "
        f"with --data FILE (or copy it to {target})"
    )
    if target.exists():
        digest = sha256_file(target)
        if digest != C2EVAL_SHA256:
            raise UserError(
                f"the cached copy of {C2EVAL_NAME} has sha256 {digest[:12]}…, "
                f"expected {C2EVAL_SHA256[:12]}…",
                where=str(target),
                fix="delete the file so that ccapp downloads it again",
            )
        return target
    try:
        with urllib.request.urlopen(settings.c2eval_url, timeout=30) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"cannot download {C2EVAL_NAME} from {settings.c2eval_url} ({reason})",
            fix=manual_fix,
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != C2EVAL_SHA256:
        raise UserError(
            f"the download of {C2EVAL_NAME} has sha256 {digest[:12]}…, expected "
            f"{C2EVAL_SHA256[:12]}… (a changed or damaged file); nothing was cached",
            where=settings.c2eval_url,
            fix=manual_fix,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
        tmp.write(data)
    Path(tmp.name).replace(target)
    return target


def sha256_file(path: Path) -> str:
    """A file's sha256, read a MiB at a time (datasets, GGUF files)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:20] + "…"
        return f"{json.dumps(shown)} (a string)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True)
class Summary:
    """What `ccapp data inspect` reports about a dataset."""

    location: str
    sha256: str | None
    rows: int
    unique_prompts: int
    words_min: int
    words_median: float
    words_max: int
    shorter_than: dict[int, int]  # k -> rows whose harmful response has fewer than k words
    with_safe_response: int
    skipped: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "sha256": self.sha256,
            "rows": self.rows,
            "unique_prompts": self.unique_prompts,
            "harmful_words": {
                "min": self.words_min,
                "median": self.words_median,
                "max": self.words_max,
            },
            "shorter_than": {str(k): n for k, n in self.shorter_than.items()},
            "with_safe_response": self.with_safe_response,
            "skipped": self.skipped,
        }


def summarize(dataset: Dataset, ks: Iterable[int] = (10, 20, 40, 80)) -> Summary:
    words = [len(row.harmful_response.split()) for row in dataset.rows]
    return Summary(
        location=dataset.location,
        sha256=dataset.sha256,
        rows=len(dataset.rows),
        unique_prompts=len({row.request for row in dataset.rows}),
        words_min=min(words),
        words_median=statistics.median(words),
        words_max=max(words),
        shorter_than={k: sum(w < k for w in words) for k in ks},
        with_safe_response=sum(row.safe_response is not None for row in dataset.rows),
        skipped=dict(dataset.skipped),
    )
