"""The SQLite store: the shared truth between CLI jobs and the app (no Textual, no torch)."""

from ccapp.store.db import Store
from ccapp.store.records import Run, RunKind, RunStatus
from ccapp.store import runs  # noqa: E402  (after the names runs.py imports)

__all__ = ["Run", "RunKind", "RunStatus", "Store", "runs"]
