"""Opening the SQLite store: pragmas, migrations, and the one way to write.

Every process opens its own `Store` (a sqlite3 connection must not cross threads). Writes
go through `Store.write()`, which takes SQLite's write lock up front (`BEGIN IMMEDIATE`):
a deferred transaction that later needs the lock fails at once with "database is locked"
when another process writes, whatever the busy timeout, while an immediate one waits.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccapp.errors import UserError
from ccapp.store.schema import LATEST_VERSION, MIGRATIONS

if TYPE_CHECKING:
    from sqlite_utils import Database


def _import_sqlite_utils() -> Any:
    """sqlite-utils without the pandas/numpy it imports when they are installed.

    It uses them only to map pandas/numpy scalar types to column types, which ccapp never
    inserts, and importing them costs ~0.5 s on every `ccapp --help` and app start. They
    stay importable afterwards for code that needs them.
    """
    if "sqlite_utils" in sys.modules:
        return sys.modules["sqlite_utils"]
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import` raise ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            sys.modules.pop(name, None)
    return sqlite_utils


_sqlite_utils = _import_sqlite_utils()
BUSY_TIMEOUT_S = 30.0


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


SQLITE_HEADER = b"SQLite format 3\x00"
MIN_DATABASE_BYTES = 512  # the smallest page size: any real database is at least this big


def _not_sqlite(path: Path) -> bool:
    """A small non-empty file that is not SQLite, which SQLite would take for an empty store
    and overwrite (larger files it refuses itself: "file is not a database").

    The file is opened only when it is under 512 bytes, a size no SQLite database has:
    closing any descriptor of a database file drops every POSIX lock this process holds on
    it, so reading the header of a store that another thread has open would let a writer in
    under that thread's read lock — and corrupt what it reads.
    """
    try:
        size = path.stat().st_size
    except OSError:  # missing (a new store) or unreadable (sqlite3 says so below)
        return False
    if not 0 < size < MIN_DATABASE_BYTES:
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError:
        return False
    return head != SQLITE_HEADER


def _writable(path: Path) -> bool:
    """Whether SQLite may write the store and the files it creates beside it (a read-only
    mount or permissions say no; `os.access` answers both)."""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


class Store:
    """A connection to one ccapp store file, migrated to the latest schema."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self.db: Database = _sqlite_utils.Database(
            conn, execute_plugins=False, recursive_triggers=False
        )

    @classmethod
    def open(cls, path: Path | str, *, migrate: bool = True) -> Store:
        """Open (creating if needed) and upgrade the store at `path`.

        With `migrate=False` an older store is opened as is; that is for tests and tools
        that inspect old files, never for normal use.
        """
        path = Path(path).expanduser()
        if path.is_dir():
            raise UserError(
                "is a folder, not a store file",
                where=str(path),
                fix="pass a file path such as ccapp.db to --db",
            )
        if _not_sqlite(path):  # SQLite would take a 1-byte file for an empty store and overwrite it
            raise UserError(
                "cannot open the store (not a SQLite file); nothing was changed",
                where=str(path),
                fix="pass a ccapp store (or a new file name) to --db or [store] path",
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the store's folder ({exc.strerror})",
                where=str(path.parent),
                fix="choose a writable location with --db or [store] path",
            ) from None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (see Store.write).
            conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if not _writable(path):
                raise UserError(
                    "cannot open the store: it or its folder is read-only (SQLite keeps its "
                    "-wal and -shm files beside the store, even to read it)",
                    where=str(path),
                    fix="make the file and its folder writable, or copy the store to a "
                    "writable folder and pass the copy with --db",
                ) from None
            raise UserError(
                f"cannot open the store ({exc})",
                where=str(path),
                fix="check that it is a ccapp store (a SQLite file) or pass another file with --db",
            ) from None
        store = cls(path, conn)
        if version > LATEST_VERSION:
            conn.close()
            raise UserError(
                f"the store has schema version {version}, newer than this ccapp knows "
                f"({LATEST_VERSION})",
                where=str(path),
                fix="upgrade ccapp (pip install -U ccapp), or use another store with --db",
            )
        try:
            store._prepare(migrate)
        except sqlite3.OperationalError as exc:
            conn.close()
            raise UserError(
                f"cannot prepare the store ({exc})",
                where=str(path),
                fix="check free disk space and write permission, or pass another file with --db",
            ) from None
        return store

    def _prepare(self, migrate: bool) -> None:
        """WAL mode and the migrations. Two connections preparing a new store at once (the
        app's first screen and its refresh, two jobs started together) can meet a lock that
        SQLite's busy handler does not wait for: switching to WAL takes an exclusive lock
        without it. So a locked preparation is tried again, up to the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        pause = 0.01
        while True:
            try:
                if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                if migrate:
                    self.migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    @property
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, target: int = LATEST_VERSION) -> None:
        """Run the pending migrations up to `target`, each in its own transaction."""
        while self.version < target:
            with self.write():
                # Re-read under the write lock: another process may have migrated meanwhile.
                current = self.version
                if current >= target:
                    break
                for statement in MIGRATIONS[current]:
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {current + 1}")

    @contextmanager
    def write(self) -> Iterator[Database]:
        """A short write transaction; nested calls join the outer one."""
        if self.conn.in_transaction:
            yield self.db
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read query and return its rows as dicts."""
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def count(self, table: str, where: str, params: Sequence[Any] = ()) -> int:
        """`SELECT count(*) FROM table WHERE where` (table and where are ccapp's own SQL)."""
        return int(
            self.conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]
        )

    def tables(self) -> list[str]:
        return sorted(self.db.table_names())

    def indexes(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
        )
        return sorted(r[0] for r in rows)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
