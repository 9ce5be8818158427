"""Which export a file name asks for, and writing it: one place for `ccapp export` and the app's `x`.

A file's suffix says what it holds, so `--out run-3.html` writes the HTML page even without
`--format html`, and a format that contradicts the suffix (`--format report --out r.html`) is
refused rather than leaving JSON under an `.html` name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccapp.errors import UserError
from ccapp.store import RunKind, Store, runs

FORMATS = ("report", "paper", "samples", "html", "pairs")
# what each format is called in a sentence ("writing run 3's HTML report to …")
WHAT = {
    "report": "JSON report",
    "paper": "paper's list",
    "samples": "samples table",
    "html": "HTML report",
    "pairs": "preference pairs",
}

# what each suffix holds; a name with none of these is a report file, or a syn run's pairs folder
SUFFIX_FORMATS = {
    ".json": "report",
    ".html": "html",
    ".htm": "html",
    ".parquet": "samples",
    ".jsonl": "samples",
    ".csv": "samples",
}
# the suffixes each format may be written under ("" : no suffix)
FORMAT_SUFFIXES = {
    "report": (".json", ""),
    "paper": (".json", ""),
    "html": (".html", ".htm"),
    "samples": (".parquet", ".jsonl", ".csv"),
    "pairs": ("",),
}
SUFFIX_HELP = (
    ".json (the report), .html (the page), .parquet, .jsonl or .csv (the samples table), "
    "or a folder without a suffix (a syn run's pairs)"
)


@dataclass(frozen=True)
class Exported:
    """What was written: where (None: stdout), what it holds when that is worth a line
    ("120 rows (parquet)"), and a note to show beside it (the paper list's k's when they are
    not the paper's)."""

    path: Path | None
    summary: str
    note: str | None = None


def to_stdout(out: Path | None) -> bool:
    return out is not None and str(out) == "-"


def export_format(out: Path | None, asked: str | None, kind: RunKind) -> str:
    """The format to write: `asked` when it fits the suffix of `out`, else what the suffix
    says; one the run's kind does not have is refused.

    With neither, a syn run gives its pairs (its only export beside the report) when `out`
    has no suffix, and any run gives its JSON report."""
    fmt = _format_named(out, asked, kind)
    has = KIND_FORMATS.get(kind, ("report",))
    if fmt not in has:
        raise UserError(
            f"{kind.a_run} has no {WHAT[fmt]} (it has: {', '.join(WHAT[f] for f in has)})",
            where="--format" if asked else "--out",
            fix="end the name with .json for its report"
            if kind is not RunKind.EVAL
            else "pairs come from a syn run (ccapp runs list --kind syn)",
        )
    return fmt


def _format_named(out: Path | None, asked: str | None, kind: RunKind) -> str:
    named = out is not None and not to_stdout(out)
    suffix = out.suffix.lower() if named and out is not None else ""
    if asked is not None:
        if named and suffix not in FORMAT_SUFFIXES[asked] and suffix in SUFFIX_FORMATS:
            allowed = [s for s in FORMAT_SUFFIXES[asked] if s]
            name_it = f"end the name with {' or '.join(allowed)}" if allowed else "name a folder"
            raise UserError(
                f"--format {asked} does not write {suffix} files; '{out}' would hold the wrong "
                "thing, so nothing was written",
                where="--out",
                fix=f"leave out --format (the suffix asks for --format {SUFFIX_FORMATS[suffix]}), "
                f"or {name_it}",
            )
        return asked
    if not named:
        return "report"
    if suffix in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffix]
    if suffix and kind is not RunKind.SYN:
        raise UserError(
            f"'{out}' does not say what to write",
            where="--out",
            fix=f"end the name with {SUFFIX_HELP}, or give --format",
        )
    return "pairs" if kind is RunKind.SYN else "report"


def default_path(run_id: int, fmt: str) -> Path:
    """Where a format goes in the reports folder (the app's proposal; the CLI's default
    without --out, except for pairs, whose folder it asks to be named)."""
    from ccapp.config import paths

    names = {
        "report": f"run-{run_id}.json",
        "paper": f"run-{run_id}-paper.json",
        "samples": f"run-{run_id}-samples.parquet",
        "html": f"run-{run_id}.html",
        "pairs": f"run-{run_id}-pairs",
    }
    return paths().reports_dir / names[fmt]


# the formats each kind of run has (a train or syn run's report holds its settings and result)
KIND_FORMATS = {
    RunKind.EVAL: ("report", "paper", "samples", "html"),
    RunKind.SYN: ("report", "pairs"),
}


def occupied(path: Path) -> bool:
    """Whether writing to `path` would replace something (a file, or a folder with files)."""
    path = path.expanduser()
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def write_export(
    store: Store,
    run_id: int,
    fmt: str,
    out: Path | None,
    *,
    force: bool = False,
    judge: str | None = None,
    jsonl: bool = False,
) -> Exported:
    """Write run `run_id` as `fmt` to `out` (`-`: stdout; None: the format's default path)."""
    if fmt == "pairs":
        return _pairs(store, run_id, out, force=force, jsonl=jsonl)
    stdout = to_stdout(out)
    target = None if stdout else out or default_path(run_id, fmt)
    if fmt == "samples":
        from ccapp.engines.c2eval.samples import export_samples

        done = export_samples(store, run_id, target, force=force)
        return Exported(done.path, f"{done.rows} rows ({done.format})")
    if fmt == "html":
        from ccapp.engines.c2eval.html_report import write_html_report

        written = write_html_report(store, run_id, target, force=force)
        return Exported(written, "")
    return _json(store, run_id, fmt, target, force=force, judge=judge)


def _json(
    store: Store, run_id: int, fmt: str, out: Path | None, *, force: bool, judge: str | None
) -> Exported:
    import sys

    from ccapp.engines.c2eval.report import (
        build_report,
        paper_result,
        report_text,
        write_new_file,
    )

    note = None
    if fmt == "paper":
        document: object = paper_result(store, run_id, judge)
        note = paper_ks_note(runs.get_run(store, run_id).config.get("ks", []))
    else:
        document = build_report(store, run_id)
    text = report_text(document, paper=fmt == "paper")
    if out is None:
        sys.stdout.write(text)
        return Exported(None, "", note)
    write_new_file(out, text, force=force)
    return Exported(out.expanduser(), "", note)


def paper_ks_note(ks: list[int]) -> str | None:
    """The paper's list is positional: with other k's than its 10…80, say which they are."""
    from ccapp.engines.c2eval.config import DEFAULT_KS

    if tuple(int(k) for k in ks) == DEFAULT_KS:
        return None
    listed = ", ".join(f"Corr@{k}" for k in ks)
    return f"the list is [{listed}, Corr_mean] (not the paper's k = 10…80)"


def _pairs(store: Store, run_id: int, out: Path | None, *, force: bool, jsonl: bool) -> Exported:
    from ccapp.engines.c2syn.pairs_export import export_pairs

    if out is None or to_stdout(out):
        raise UserError(
            "pairs need a folder", where="--out", fix="e.g. --out ./pairs (new or empty)"
        )
    meta = export_pairs(store, run_id, out, jsonl=jsonl, force=force)
    return Exported(
        out.expanduser(),
        f"{meta['pairs']} pairs from {meta['groups']} groups ({', '.join(meta['files'])})",
    )
