"""Fixtures of the fault tests: the small eval job and its uninterrupted result (once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import EvalJob, eval_content

from ccapp.engines.c2eval.evaluate import Evaluation
from ccapp.store import Store


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory, c2eval_file: Path) -> Path:
    """The first 16 rows of C2-Eval: loading the file is not what these tests measure."""
    path = tmp_path_factory.mktemp("data") / "rows.jsonl"
    path.write_text("\n".join(c2eval_file.read_text().splitlines()[:16]) + "\n")
    return path


@pytest.fixture(scope="session")
def eval_job(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, small_data: Path
) -> EvalJob:
    """The job, with what an uninterrupted run of it stores."""
    job = EvalJob(tiny_model_dir, small_data)
    db = tmp_path_factory.mktemp("reference") / "reference.db"
    wal = db.with_name(db.name + "-wal")
    with Store.open(db) as store:
        migrated = wal.stat().st_size
        run = Evaluation(store).start(job.config())
        wal_bytes = wal.stat().st_size - migrated
    expected = eval_content(db, run.id)
    assert expected["status"] == "done" and len(expected["continuations"]) == job.total
    return EvalJob(tiny_model_dir, small_data, expected, db, run.id, wal_bytes)
