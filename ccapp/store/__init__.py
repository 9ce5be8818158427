"""The SQLite store: the shared truth between CLI jobs and the app (no Textual, no torch)."""

from ccapp.store import runs
from ccapp.store.db import Store
from ccapp.store.records import Run, RunKind, RunStatus

__all__ = ["Run", "RunKind", "RunStatus", "Store", "runs"]
