"""What the exports of an eval run share: the run they are of, and writing their file safely
(never over an existing file unless asked, never half a file).

The samples table and the HTML report go through these, so each export refuses the same
things with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ccapp.config import paths
from ccapp.errors import UserError
from ccapp.store import Run, RunKind, Store, runs


def eval_run(store: Store, run_id: int, *, export: str) -> Run:
    """The eval run `run_id`; any other kind is refused, naming the export (`--format …`)."""
    run = runs.get_run(store, run_id)
    if run.kind is not RunKind.EVAL:
        raise UserError(
            f"run {run.id} is {run.kind.a_run}; {export} exports an eval run",
            where=export,
            fix="pick an eval run (ccapp runs list), or --format report for this one",
        )
    return run


@contextmanager
def new_output(path: Path, *, force: bool) -> Iterator[Path]:
    """A partial file beside `path` to stream into; it replaces `path` only when the block
    ends without error, so a failed or interrupted export never leaves half a file under
    the real name. An existing file is kept unless `force`."""
    path = path.expanduser()
    if path.is_dir():
        raise UserError(
            "is a folder", where=str(path), fix="give a file name, e.g. samples.parquet"
        )
    if path.parent != paths().reports_dir and not path.parent.is_dir():
        raise UserError(
            "the folder does not exist; nothing was written",
            where=str(path.parent),
            fix="create it first, or choose another --out",
        )
    if path.exists() and not force:
        raise UserError(
            "exists; nothing was written",
            where=str(path),
            fix="choose another --out, or pass --force to overwrite it",
        )
    partial = path.with_name(f".{path.name}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield partial
        partial.replace(path)
    except OSError as exc:
        raise UserError(
            f"cannot write ({exc.strerror})",
            where=str(path),
            fix="choose a writable location with --out",
        ) from None
    finally:
        partial.unlink(missing_ok=True)
