"""The samples export: one flat row per continuation × judge verdict (like lm-eval's
`--log_samples`), as parquet, JSON lines or CSV, for notebooks and dataframes.

The nested JSON report is for archiving a run; this table is for analysing it:
`pandas.read_parquet` and `datasets.load_dataset("parquet", data_files=F)` read it as it
is, and Corr@k per k is a group-by on it. It is streamed — the store is read in chunks of
cells (store/samples.py) and each chunk is written before the next is read (a parquet row
group, or lines of JSON / CSV) — so a run of a million rows is exported in bounded memory
(benchmarks/bench_samples_export.py measures it).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ccapp.engines.c2eval.output_file import eval_run, new_output
from ccapp.errors import UserError
from ccapp.store import Run, Store
from ccapp.store import evals as rows_store
from ccapp.store.samples import SampleRow, sample_chunks

# (column, pyarrow type name): the one list of what a sample row holds, in order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "int64"),
    ("model", "string"),
    ("model_revision", "string"),
    ("judge", "string"),
    ("request_id", "int64"),
    ("request", "string"),
    ("k", "int64"),
    ("opener", "string"),
    ("prefill", "string"),
    ("path", "int64"),
    ("continuation", "string"),
    ("label", "string"),
    ("score", "float64"),
    ("correction_start", "int64"),
    ("correction_end", "int64"),
    ("tokens_to_correction", "int64"),
    ("relapse", "bool"),
    ("new_tokens", "int64"),
    ("finish_reason", "string"),
    ("judge_answer", "string"),
    ("continuation_id", "int64"),
)
FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".csv": "csv"}
# Rows held at once, and the rows of one parquet row group. pyarrow's writer needs many
# times a row group's size while it encodes one, so this is what bounds the export's memory
# (benchmarks/bench_samples_export.py: 162 MiB peak RSS for 1M rows, 74 of them imports).
ROWS_PER_CHUNK = 4000


@dataclass(frozen=True)
class SamplesExport:
    path: Path | None  # None: written to stdout
    format: str
    rows: int


def model_revision(config: Mapping[str, Any]) -> str | None:
    """What pins the run's weights as the run recorded it (engines/provenance.py): the Hub
    commit, `gguf-sha256:…` or `local-sha256:…`; None for a run stored before ccapp recorded
    it. The `--revision` a user asked for is not used: a branch name pins nothing."""
    if config.get("model_revision"):
        return str(config["model_revision"])
    provenance = config.get("provenance")
    model = provenance.get("model") if isinstance(provenance, Mapping) else None
    if isinstance(model, Mapping) and model.get("revision"):
        return str(model["revision"])
    return None


def sample_format(out: Path) -> str:
    """The format a file name asks for, by its suffix."""
    found = FORMATS.get(out.suffix.lower())
    if found is None:
        raise UserError(
            f"'{out.name}' does not say which table format to write",
            where="--out",
            fix="end the file name with .parquet, .jsonl or .csv",
        )
    return found


def sample_records(
    store: Store, run: Run, *, rows_per_chunk: int = ROWS_PER_CHUNK
) -> Iterator[list[dict[str, Any]]]:
    """The run's sample rows as dicts in COLUMNS order, about `rows_per_chunk` at a time."""
    fixed = {"run_id": run.id, "model": run.model, "model_revision": model_revision(run.config)}
    per_continuation = max(1, len(rows_store.judges_of(store, run.id)))
    continuations = max(1, rows_per_chunk // per_continuation)
    for chunk in sample_chunks(store, run.id, continuations_per_chunk=continuations):
        yield [_record(fixed, row) for row in chunk]


def _record(fixed: dict[str, Any], r: SampleRow) -> dict[str, Any]:
    return {
        **fixed,
        "judge": r.judge,
        "request_id": r.request_id,
        "request": r.request,
        "k": r.k,
        "opener": r.opener,
        "prefill": r.prefill,
        "path": r.path,
        "continuation": r.continuation,
        "label": r.label,
        "score": r.score,
        "correction_start": r.span_start,
        "correction_end": r.span_end,
        "tokens_to_correction": r.tokens_to_correction,
        "relapse": r.relapse,
        "new_tokens": r.new_tokens,
        "finish_reason": r.finish_reason,
        "judge_answer": r.judge_answer,
        "continuation_id": r.continuation_id,
    }


class _Sink(Protocol):
    def write(self, rows: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class _ParquetSink:
    """One row group per chunk, through pyarrow's ParquetWriter: the file is never held whole.

    A chunk reaches Arrow as JSON lines parsed by Arrow's own reader against the fixed
    schema, not through `pa.array` on Python objects: the first such conversion imports
    pandas (~50 MiB of resident memory, a quarter of the export's budget) only to check
    whether the rows are pandas objects."""

    def __init__(self, path: Path):
        import pyarrow as pa
        import pyarrow.json as pa_json
        import pyarrow.parquet as pq

        self._json = pa_json
        self.schema = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in COLUMNS])
        self.parse = pa_json.ParseOptions(
            explicit_schema=self.schema, unexpected_field_behavior="error"
        )
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, rows: list[dict[str, Any]]) -> None:
        payload = _json_lines(rows).encode("utf-8")
        read = self._json.ReadOptions(block_size=max(1 << 20, len(payload) + 1))
        table = self._json.read_json(
            io.BytesIO(payload), read_options=read, parse_options=self.parse
        )
        self.writer.write_table(
            table.select([name for name, _ in COLUMNS]), row_group_size=len(rows)
        )

    def close(self) -> None:
        self.writer.close()  # an empty run still gets the schema, with no rows


def _json_lines(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


class _JsonlSink:
    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.stream.write(_json_lines(rows))

    def close(self) -> None:
        self.stream.flush()


class _CsvSink:
    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.writer = csv.DictWriter(stream, fieldnames=[name for name, _ in COLUMNS])
        self.writer.writeheader()

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        self.stream.flush()


def export_samples(
    store: Store,
    run_id: int,
    out: Path | None,
    *,
    force: bool = False,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> SamplesExport:
    """Write the run's samples to `out` (format from its suffix; None: JSON lines on stdout)."""
    run = eval_run(store, run_id, export="--format samples")
    chunks = sample_records(store, run, rows_per_chunk=rows_per_chunk)
    if out is None:
        return SamplesExport(None, "jsonl", _drain(chunks, _JsonlSink(sys.stdout)))
    kind = sample_format(out)
    with new_output(out, force=force) as partial:
        if kind == "parquet":
            rows = _drain(chunks, _ParquetSink(partial))
        else:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                sink: _Sink = _JsonlSink(stream) if kind == "jsonl" else _CsvSink(stream)
                rows = _drain(chunks, sink)
    return SamplesExport(out.expanduser(), kind, rows)


def _drain(chunks: Iterator[list[dict[str, Any]]], sink: _Sink) -> int:
    count = 0
    for rows in chunks:
        sink.write(rows)
        count += len(rows)
    sink.close()
    return count
