"""Connections to results.sqlite: opened lazily (nothing touches the disk before the first
write), migrated once per process, one transaction per `transaction()` block, and every sqlite3
error that means a damaged file or a refusing disk turned into one line.

- a database SQLite cannot read gives `DamagedDatabase`, a write the disk refuses
  `StorageError`: one line each, never a sqlite3 traceback (pandas-wrapped errors too).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from prunebench.errors import DamagedDatabase, PrunebenchError, StorageError
from prunebench.store.schema import DB_NAME, migrate

# sqlite3 error names (prefixes) that mean the file is not a sound database / the disk refuses.
DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
REFUSED = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")


class Database:
    """The results database of one directory. Reads of a missing database are the caller's to
    answer (`exists`); the first `connect` creates the directory and the tables."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.path = self.root / DB_NAME
        self._ready = False

    def exists(self) -> bool:
        return self.path.exists()

    def problem(self, exc: BaseException) -> PrunebenchError | None:
        """The one-line error for a sqlite3 error (raised by sqlite3 or wrapped by pandas) that
        means a damaged database or a disk that refuses writes; None for anything else."""
        cause = exc if isinstance(exc, sqlite3.DatabaseError) else exc.__cause__
        if not isinstance(cause, sqlite3.DatabaseError):
            return None
        name = getattr(cause, "sqlite_errorname", "") or ""
        if name.startswith(DAMAGED):
            damaged = DamagedDatabase(
                f"{self.path} is damaged: {cause}; `prunebench verify {self.root}` checks "
                "the whole directory (restore the file from a backup, or use a new --results)"
            )
            damaged.reason = f"damaged: {cause}"
            return damaged
        if name.startswith(REFUSED):
            return StorageError(f"cannot write {self.path}: {cause}")
        return None

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            con.close()
            raise
        return con

    def _prepare(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.root}: {exc.strerror or exc}") from None
        con = self._open()
        try:
            con.execute("BEGIN IMMEDIATE")  # two processes opening a new directory at once
            try:
                migrate(con)
            except BaseException:
                rollback(con)
                raise
            con.execute("COMMIT")
        finally:
            con.close()
        self._ready = True

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                self._prepare()
            con = self._open()
            try:
                yield con
            finally:
                con.close()
        except Exception as exc:
            problem = self.problem(exc)
            if problem is None:
                raise
            raise problem from None

    @contextmanager
    def held_open(self) -> Iterator[None]:
        """Keep one idle connection open meanwhile. SQLite checkpoints the WAL into the database
        (with an fsync) whenever the LAST connection closes; with this one open, the many short
        transactions of a sweep do not each pay for that (about 15 ms apiece here). Creates
        nothing: without a database yet, it holds nothing."""
        if not self.exists():
            yield
            return
        with self.connect():
            yield

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                rollback(con)
                raise
            con.execute("COMMIT")

    def integrity_check(self) -> list[str]:
        """SQLite's own check of the database file: ['ok'] when sound."""
        with self.connect() as con:
            return [row[0] for row in con.execute("PRAGMA integrity_check")]


def rollback(con: sqlite3.Connection) -> None:
    """Roll back what is open (SQLite may have done so itself, e.g. on a full disk)."""
    if con.in_transaction:
        with suppress(sqlite3.Error):
            con.execute("ROLLBACK")
