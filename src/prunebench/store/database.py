"""The results directory: one SQLite database (runs, steps, epochs, files, claims) plus
safetensors files.

This is the only module that knows paths and SQL. Every write is one transaction; a step's row
and its epoch rows land together or not at all. Columns are declared once below; a database made
by an older version gains new (nullable) columns and tables when opened.

Nothing wrong goes unnoticed:
- every file is written whole under a temporary name, hashed, and renamed into place INSIDE the
  transaction that records its sha256 in `files` (and, for a step, writes its rows), so a file
  and its record land together; reads check the file against the record (`ChecksumMismatch`);
- every step row carries `digest`, the sha256 of its stored values (`row_digest`), computed
  from the row as SQLite gives it back, in the transaction that writes it;
- `stored_steps` (the one answer to "which steps are stored whole") leaves out a step whose
  checkpoint does not match its hash or whose rows all fail their digest;
- a database SQLite cannot read gives `DamagedDatabase`, a write the disk refuses
  `StorageError`: one line each, never a sqlite3 traceback.
Files and rows written by an earlier version carry no hash or digest; see `adopt_files`.

`claims` lets several processes work on one directory: a process claims a step (or a dense
model) before computing it, keeps its claims' heartbeat fresh, and drops the claim in the
transaction that stores the result (`claim`, `heartbeat`, `release`); the policy (when a claim
may be taken over) is the caller's.

Layout of a results directory:
    results.sqlite                     runs, steps, epochs, files (sha256 of each file), claims
    dense/<base_id>.safetensors        pretrained dense models
    checkpoints/<step_key>.safetensors the state after each computed pruning step
    mlruns/, tensorboard/              default destinations of --log mlflow / tensorboard
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from prunebench.errors import CheckpointError, DamagedDatabase, PrunebenchError, StorageError
from prunebench.store.checkpoints import Staged, load_tensors, sha256_file, stage_tensors

DB_NAME = "results.sqlite"
LOG_DIRS = {"mlflow": "mlruns", "tensorboard": "tensorboard"}  # --log defaults, per backend

RUN_COLUMNS: dict[str, str] = {
    "run_id": "TEXT PRIMARY KEY",
    "name": "TEXT",
    "status": "TEXT",  # running | done | failed | interrupted
    "error": "TEXT",
    "regime": "TEXT",
    "target": "REAL",
    "structure": "TEXT",
    "criterion": "TEXT",
    "scope": "TEXT",
    "seed": "INTEGER",
    "model": "TEXT",
    "dataset": "TEXT",
    "task": "TEXT",
    "metric": "TEXT",  # headline metric of the task, e.g. top1 or ppl
    "base_id": "TEXT",
    "n_steps": "INTEGER",
    "schedule_json": "TEXT",
    "config_json": "TEXT",
    "prunable_json": "TEXT",
    "dense_params": "INTEGER",
    "dense_val_loss": "REAL",
    "dense_val_metric": "REAL",
    "dense_test_loss": "REAL",
    "dense_test_top1": "REAL",
    "dense_test_top5": "REAL",
    "dense_test_ppl": "REAL",
    "device": "TEXT",
    "schema_version": "INTEGER",
    "started_at": "TEXT",
    "finished_at": "TEXT",
}

STEP_COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "step": "INTEGER NOT NULL",
    "step_key": "TEXT NOT NULL",
    "target": "REAL",  # cumulative scheduled fraction of the original prunable weights
    "increment": "REAL",
    "achieved_sparsity": "REAL",  # counted from the weights after fine-tuning
    "prunable_total": "INTEGER",
    "prunable_nonzero": "INTEGER",
    "params_total": "INTEGER",
    "params_nonzero": "INTEGER",
    "compression_ratio": "REAL",  # dense params / nonzero params
    "macs_dense": "REAL",
    "macs_pruned": "REAL",
    "speedup": "REAL",  # theoretical: dense MACs / pruned MACs
    "latency_ms": "REAL",
    "dense_latency_ms": "REAL",
    "pruned_test_loss": "REAL",  # right after pruning, before fine-tuning
    "pruned_test_top1": "REAL",
    "pruned_test_top5": "REAL",
    "pruned_test_ppl": "REAL",
    "pruned_val_loss": "REAL",  # right after pruning, on the validation split
    "pruned_val_metric": "REAL",
    "best_epoch": "INTEGER",
    "best_val_loss": "REAL",
    "best_val_metric": "REAL",
    "test_loss": "REAL",
    "test_top1": "REAL",
    "test_top5": "REAL",
    "test_ppl": "REAL",
    "test_outcomes": "BLOB",  # per-example test results (prunebench.store.example_outcomes), for paired tests
    "epochs": "INTEGER",  # fine-tuning epochs of this step
    "cumulative_epochs": "INTEGER",
    "stopped_early": "INTEGER",
    "rule": "TEXT",  # adaptive regime: the rule that chose this step's size (first cut, grow, ...)
    "rule_rate": "REAL",  # adaptive: the share of the remaining weights the step prunes
    "rule_recovery": "REAL",  # adaptive: the previous step's measured recovery behind the choice
    "calibration_samples": "INTEGER",
    "seconds": "REAL",
    "reused": "INTEGER",  # 1 when copied from an identical step computed earlier
    "created_at": "TEXT",
    "digest": "TEXT",  # sha256 of the row's stored values (row_digest); NULL: an earlier version
}

EPOCH_COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "step": "INTEGER NOT NULL",
    "epoch": "INTEGER NOT NULL",
    "train_loss": "REAL",
    "val_loss": "REAL",
    "val_metric": "REAL",
    "lr": "REAL",
    "seconds": "REAL",
    "improved": "INTEGER",
}

FILE_COLUMNS: dict[str, str] = {
    "kind": "TEXT NOT NULL",  # checkpoint | dense
    "key": "TEXT NOT NULL",  # step key | base id
    "sha256": "TEXT NOT NULL",
    "bytes": "INTEGER",
    "origin": "TEXT",  # written | adopted (an earlier version's file, hashed on first read)
    "written_at": "REAL",  # time.time(): tells a rewrite from the record seen before
}

CLAIM_COLUMNS: dict[str, str] = {
    "kind": "TEXT NOT NULL",  # checkpoint | dense
    "key": "TEXT NOT NULL",
    "owner": "TEXT NOT NULL",
    "heartbeat": "REAL NOT NULL",  # time.time() of the owner's last sign of life
}

TABLES = {
    "runs": (RUN_COLUMNS, ""),
    "steps": (STEP_COLUMNS, ", PRIMARY KEY (run_id, step)"),
    "epochs": (EPOCH_COLUMNS, ", PRIMARY KEY (run_id, step, epoch)"),
    "files": (FILE_COLUMNS, ", PRIMARY KEY (kind, key)"),
    "claims": (CLAIM_COLUMNS, ", PRIMARY KEY (kind, key)"),
}

DIGEST_FORMAT = "prunebench-row/1"
# sqlite3 error names (prefixes) that mean the file is not a sound database / the disk refuses.
DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
REFUSED = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# When and how a row came to be, not what it measured: left out of its digest, so that equal
# results have equal digests (a resumed, a shared and a lone run's rows compare equal whole).
UNDIGESTED = {"digest", "seconds", "created_at", "reused"}


def row_digest(row: Mapping[str, Any]) -> str:
    """sha256 of a step row's values as SQLite stores them: every declared column but
    UNDIGESTED, NULLs left out (a column added later leaves older digests valid), floats exact
    (repr), bytes by their sha256."""
    values: dict[str, Any] = {}
    for name in STEP_COLUMNS:
        value = row.get(name)
        if name in UNDIGESTED or value is None:
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            value = {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
        values[name] = value
    text = json.dumps([DIGEST_FORMAT, values], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def digest_ok(row: Mapping[str, Any] | sqlite3.Row) -> bool | None:
    """True: the row matches its digest; False: it was changed after it was written; None: no
    digest (written by an earlier version)."""
    row = dict(row)  # a sqlite3.Row, too
    if row.get("digest") is None:
        return None
    return row["digest"] == row_digest(row)


@dataclass
class RowCheck:
    rows: int = 0
    bad: list[tuple[str, int]] = field(default_factory=list)  # (run_id, step) failing the digest
    undigested: int = 0  # written by an earlier version


@dataclass
class FileCheck:
    verified: dict[str, int] = field(default_factory=dict)  # kind -> files matching their hash
    mismatched: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)  # recorded or referred to, not on disk
    unhashed: list[Path] = field(default_factory=list)  # an earlier version's, not adopted yet
    adopted: int = 0  # hashed on first read (written by an earlier version)
    orphans: list[Path] = field(default_factory=list)  # nothing in the database refers to them


class Store:
    """Nothing touches the disk until the first write, so that a run failing its checks
    before any compute leaves no directory behind; reads of a missing database are empty."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.db_path = self.root / DB_NAME
        self._ready = False

    # ------------------------------------------------------------------ plumbing
    def exists(self) -> bool:
        return self.db_path.exists()

    def _problem(self, exc: BaseException) -> PrunebenchError | None:
        """The one-line error for a sqlite3 error (raised by sqlite3 or wrapped by pandas) that
        means a damaged database or a disk that refuses writes; None for anything else."""
        cause = exc if isinstance(exc, sqlite3.DatabaseError) else exc.__cause__
        if not isinstance(cause, sqlite3.DatabaseError):
            return None
        name = getattr(cause, "sqlite_errorname", "") or ""
        if name.startswith(DAMAGED):
            damaged = DamagedDatabase(
                f"{self.db_path} is damaged: {cause}; `prunebench verify {self.root}` checks "
                "the whole directory (restore the file from a backup, or use a new --results)"
            )
            damaged.reason = f"damaged: {cause}"
            return damaged
        if name.startswith(REFUSED):
            return StorageError(f"cannot write {self.db_path}: {cause}")
        return None

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None)
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
                self._migrate(con)
            except BaseException:
                _rollback(con)
                raise
            con.execute("COMMIT")
        finally:
            con.close()
        self._ready = True

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                self._prepare()
            con = self._open()
            try:
                yield con
            finally:
                con.close()
        except Exception as exc:
            problem = self._problem(exc)
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
        with self._connect():
            yield

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                _rollback(con)
                raise
            con.execute("COMMIT")

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        for table, (columns, extra) in TABLES.items():
            body = ", ".join(f"{name} {kind}" for name, kind in columns.items())
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body}{extra})")
            have = {row["name"] for row in con.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        con.execute("CREATE INDEX IF NOT EXISTS steps_by_key ON steps (step_key)")

    @staticmethod
    def _insert(con: sqlite3.Connection, table: str, row: dict[str, Any], upsert: str) -> None:
        columns = TABLES[table][0]
        unknown = [k for k in row if k not in columns]
        if unknown:
            raise KeyError(f"{table} has no column '{unknown[0]}'")
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        con.execute(f"INSERT {upsert} INTO {table} ({names}) VALUES ({marks})", list(row.values()))

    # ------------------------------------------------------------------ runs
    def start_run(self, run_id: str, fields: dict[str, Any]) -> None:
        """Create the run row, or mark an existing one as running again (resume)."""
        with self.transaction() as con:
            exists = con.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if exists:
                con.execute(
                    "UPDATE runs SET status='running', error=NULL, finished_at=NULL WHERE run_id=?",
                    (run_id,),
                )
            else:
                row = {"run_id": run_id, "status": "running", "started_at": now(), **fields}
                self._insert(con, "runs", row, "")

    def update_run(self, run_id: str, fields: dict[str, Any]) -> None:
        unknown = [k for k in fields if k not in RUN_COLUMNS]
        if unknown:
            raise KeyError(f"runs has no column '{unknown[0]}'")
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.transaction() as con:
            con.execute(f"UPDATE runs SET {sets} WHERE run_id=?", [*fields.values(), run_id])

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        self.update_run(run_id, {"status": status, "error": error, "finished_at": now()})

    def run(self, run_id: str) -> dict[str, Any] | None:
        if not self.exists():
            return None
        with self._connect() as con:
            row = con.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return dict(row) if row else None

    def runs(self) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        with self._connect() as con:
            return [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY started_at, run_id")]

    # ------------------------------------------------------------------ steps
    def write_step(self, row: dict[str, Any], epochs: list[dict[str, Any]]) -> None:
        """The step's row and its epoch rows, in one transaction (replacing a previous attempt)."""
        self.write_steps([(row, epochs)])

    def write_steps(self, items: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        """Several (row, epochs) pairs in ONE transaction: a step shared by many runs of a sweep
        lands for all of them or for none, so a killed sweep never leaves a partial copy."""
        with self.transaction() as con:
            self._write_rows(con, items)

    def commit_step(
        self,
        step_key: str,
        state: tuple[dict[str, torch.Tensor], dict[str, Any]],
        items: list[tuple[dict[str, Any], list[dict[str, Any]]]],
        owner: str | None = None,
    ) -> None:
        """A computed step: its checkpoint (written whole first, then renamed into place), the
        checkpoint's sha256 and the rows (`write_steps`) in one transaction that also drops
        `owner`'s claim on the step. Killed or refused (disk full: `StorageError`) at any point,
        the step is stored whole or not at all."""
        staged = stage_tensors(self.checkpoint_path(step_key), *state)
        try:
            with self.transaction() as con:
                self._place(con, "checkpoint", step_key, staged)
                self._write_rows(con, items)
                if owner is not None:
                    self._release(con, owner, "checkpoint", step_key)
        finally:
            staged.discard()

    def _write_rows(
        self, con: sqlite3.Connection, items: list[tuple[dict[str, Any], list[dict[str, Any]]]]
    ) -> None:
        stamp = now()
        for row, epochs in items:
            row = {**row, "created_at": row.get("created_at") or stamp}
            row.pop("digest", None)
            where = (row["run_id"], row["step"])
            con.execute("DELETE FROM epochs WHERE run_id=? AND step=?", where)
            self._insert(con, "steps", row, "OR REPLACE")
            for epoch in epochs:
                self._insert(
                    con, "epochs", {**epoch, "run_id": row["run_id"], "step": row["step"]}, ""
                )
            self._seal(con, *where)

    @staticmethod
    def _seal(con: sqlite3.Connection, run_id: str, step: int) -> None:
        """Digest the row as SQLite gives it back (NaN stored as NULL, REAL affinity applied)."""
        where = (run_id, step)
        stored = con.execute("SELECT * FROM steps WHERE run_id=? AND step=?", where).fetchone()
        con.execute(
            "UPDATE steps SET digest=? WHERE run_id=? AND step=?",
            (row_digest(dict(stored)), *where),
        )

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        with self._connect() as con:
            rows = con.execute("SELECT * FROM steps WHERE run_id=? ORDER BY step", (run_id,))
            return [dict(r) for r in rows]

    def epochs(self, run_id: str, step: int) -> list[dict[str, Any]]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT * FROM epochs WHERE run_id=? AND step=? ORDER BY epoch", (run_id, step)
            )
            return [dict(r) for r in rows]

    def step_by_key(self, step_key: str) -> dict[str, Any] | None:
        """A row of any run for this step key that matches its digest, preferring the one that
        was computed."""
        if not self.exists():
            return None
        with self._connect() as con:
            rows = con.execute(
                "SELECT * FROM steps WHERE step_key=? ORDER BY reused, created_at", (step_key,)
            )
            return next((dict(r) for r in rows if digest_ok(r) is not False), None)

    def stored_steps(
        self, keys: Iterable[str] | None = None, damaged: dict[str, str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The steps that are stored whole and sound: a row that matches its digest AND a
        checkpoint that matches the sha256 recorded when it was written (an earlier version's,
        unrecorded, is taken as it is). step_key -> that row, preferring the computed one. Only
        these are resumed from or reused. With `keys`, only those are looked at (and hashed);
        `damaged` collects the keys left out for a mismatch, with the reason in one line."""
        if not self.exists():
            return {}
        wanted = None if keys is None else set(keys)
        sources: dict[str, dict[str, Any]] = {}
        failing: set[str] = set()
        query, args = "SELECT * FROM steps", []
        if wanted is not None and len(wanted) <= 100:  # a few keys: no full scan
            query += f" WHERE step_key IN ({', '.join('?' for _ in wanted)})"
            args = sorted(wanted)
        with self._connect() as con:
            rows = con.execute(f"{query} ORDER BY reused DESC, created_at DESC", args)
            for record in rows:  # later rows win: computed (reused=0) and oldest last
                key = record["step_key"]
                if wanted is not None and key not in wanted:
                    continue
                if digest_ok(record) is False:
                    failing.add(key)
                else:
                    sources[key] = dict(record)
            hashes = self._hashes(con, "checkpoint")
        notes = {k: f"every row of step {k} fails its digest" for k in failing - set(sources)}
        out: dict[str, dict[str, Any]] = {}
        for key, row in sources.items():
            path = self.checkpoint_path(key)
            if not path.exists():
                continue
            if key in hashes and sha256_file(path) != hashes[key]:
                notes[key] = f"{path} does not match the sha256 recorded when it was written"
                continue
            out[key] = row
        if damaged is not None:
            damaged.update(notes)
        return out

    def rows_of(self, step_key: str) -> list[dict[str, Any]]:
        """Every row of this step key (one per run through it) that does not fail its digest."""
        if not self.exists():
            return []
        with self._connect() as con:
            rows = con.execute("SELECT * FROM steps WHERE step_key=?", (step_key,))
            return [dict(r) for r in rows if digest_ok(r) is not False]

    def run_steps(self, verified: bool = False) -> dict[str, dict[int, str]]:
        """run_id -> {step: step_key} of every stored row (`verified`: of the rows that do not
        fail their digest)."""
        out: dict[str, dict[int, str]] = {}
        if not self.exists():
            return out
        with self._connect() as con:
            for row in con.execute("SELECT * FROM steps"):
                if not verified or digest_ok(row) is not False:
                    out.setdefault(row["run_id"], {})[row["step"]] = row["step_key"]
        return out

    def row_check(self) -> RowCheck:
        """Every step row against its digest."""
        check = RowCheck()
        if not self.exists():
            return check
        with self._connect() as con:
            for row in con.execute("SELECT * FROM steps ORDER BY run_id, step"):
                check.rows += 1
                ok = digest_ok(row)
                if ok is None:
                    check.undigested += 1
                elif not ok:
                    check.bad.append((row["run_id"], row["step"]))
        return check

    # ------------------------------------------------------------------ files
    def checkpoint_path(self, step_key: str) -> Path:
        return self.root / "checkpoints" / f"{step_key}.safetensors"

    def dense_path(self, base_id: str) -> Path:
        return self.root / "dense" / f"{base_id}.safetensors"

    def _path(self, kind: str, key: str) -> Path:
        return self.checkpoint_path(key) if kind == "checkpoint" else self.dense_path(key)

    @staticmethod
    def _hashes(con: sqlite3.Connection, kind: str) -> dict[str, str]:
        rows = con.execute("SELECT key, sha256 FROM files WHERE kind=?", (kind,))
        return {r["key"]: r["sha256"] for r in rows}

    def written_at(self, kind: str) -> dict[str, float]:
        """key -> when each recorded file of this kind was last written (see `claim`)."""
        if not self.exists():
            return {}
        with self._connect() as con:
            rows = con.execute("SELECT key, written_at FROM files WHERE kind=?", (kind,))
            return {r["key"]: r["written_at"] for r in rows}

    def file_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """What was recorded when the file was written (sha256, bytes, origin, written_at)."""
        if not self.exists():
            return None
        with self._connect() as con:
            row = con.execute("SELECT * FROM files WHERE kind=? AND key=?", (kind, key)).fetchone()
        return dict(row) if row else None

    @staticmethod
    def _place(con: sqlite3.Connection, kind: str, key: str, staged: Staged) -> None:
        """Rename a staged file into place and record its hash (inside the caller's
        transaction: another process sees the file and its record together)."""
        try:
            os.replace(staged.tmp, staged.path)
        except OSError as exc:
            raise StorageError(f"cannot write '{staged.path}': {exc.strerror or exc}") from None
        con.execute(
            "INSERT OR REPLACE INTO files (kind, key, sha256, bytes, origin, written_at) "
            "VALUES (?, ?, ?, ?, 'written', ?)",
            (kind, key, staged.sha256, staged.size, time.time()),
        )

    def load_checkpoint(self, step_key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """A step's checkpoint, checked against its recorded sha256 (`ChecksumMismatch`)."""
        record = self.file_record("checkpoint", step_key)
        return load_tensors(self.checkpoint_path(step_key), record and record["sha256"])

    def save_dense(
        self,
        base_id: str,
        tensors: dict[str, torch.Tensor],
        meta: dict[str, Any],
        owner: str | None = None,
    ) -> Path:
        """Store a dense model (its file and sha256 together; drops `owner`'s claim on it)."""
        staged = stage_tensors(self.dense_path(base_id), tensors, meta)
        try:
            with self.transaction() as con:
                self._place(con, "dense", base_id, staged)
                if owner is not None:
                    self._release(con, owner, "dense", base_id)
        finally:
            staged.discard()
        return staged.path

    def load_dense(self, base_id: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The stored dense model's tensors and metadata, or None when there is none yet;
        `ChecksumMismatch` when it no longer matches the sha256 recorded when it was written."""
        path = self.dense_path(base_id)
        if not path.exists():
            return None
        record = self.file_record("dense", base_id)
        return load_tensors(path, record and record["sha256"])

    def adopt_files(self) -> tuple[int, dict[str, str]]:
        """Record the sha256 of files written by an earlier version (which recorded none): the
        checkpoints that step rows refer to and the dense models, each if it reads whole. This
        is trust on first use: such a file cannot be checked against anything before, but from
        now on it is, like every file written since. Returns how many were recorded and the
        checkpoints that do not read (step key -> reason), which are damaged."""
        if not self.exists():
            return 0, {}
        if not self._unrecorded():  # the common case: no write lock taken
            return 0, {}
        adopted, unreadable = 0, {}
        with self.transaction() as con:  # writers record files with their rows: no race
            for kind, key in self._unrecorded(con):
                path = self._path(kind, key)
                try:
                    load_tensors(path)
                except CheckpointError as exc:
                    if kind == "checkpoint":
                        unreadable[key] = str(exc)
                    continue
                con.execute(
                    "INSERT INTO files (kind, key, sha256, bytes, origin, written_at) "
                    "VALUES (?, ?, ?, ?, 'adopted', ?)",
                    (kind, key, sha256_file(path), path.stat().st_size, time.time()),
                )
                adopted += 1
        return adopted, unreadable

    def _unrecorded(self, con: sqlite3.Connection | None = None) -> list[tuple[str, str]]:
        """(kind, key) of files on disk without a record: checkpoints that rows refer to, and
        every dense model."""
        if con is None:
            with self._connect() as fresh:
                return self._unrecorded(fresh)
        found = []
        checkpoints = self._hashes(con, "checkpoint")
        for row in con.execute("SELECT DISTINCT step_key FROM steps"):
            key = row["step_key"]
            if key not in checkpoints and self.checkpoint_path(key).exists():
                found.append(("checkpoint", key))
        dense = self._hashes(con, "dense")
        found += [("dense", k) for k in self._stems("dense") if k not in dense]
        return found

    def _stems(self, folder: str) -> list[str]:
        where = self.root / folder
        return sorted(p.stem for p in where.glob("*.safetensors")) if where.is_dir() else []

    def file_check(self) -> FileCheck:
        """Every file of the directory against the database: recorded files against their
        sha256, files that rows or runs refer to, and files nothing refers to (orphans:
        left by an interrupted write, or copied in)."""
        check = FileCheck()
        with self._connect() as con:
            records = [dict(r) for r in con.execute("SELECT * FROM files")]
            referred = {r["step_key"] for r in con.execute("SELECT DISTINCT step_key FROM steps")}
            runs = con.execute("SELECT base_id, run_id IN (SELECT run_id FROM steps) FROM runs")
            bases = {r[0]: bool(r[1]) for r in runs if r[0] is not None}  # -> the run has steps
        recorded = {(r["kind"], r["key"]) for r in records}
        needed = {
            "checkpoint": referred,
            "dense": {b for b, has_steps in bases.items() if has_steps},
        }
        for record in records:
            path = self._path(record["kind"], record["key"])
            if not path.exists():
                check.missing.append(path)
            elif sha256_file(path) != record["sha256"]:
                check.mismatched.append(path)
            else:
                check.verified[record["kind"]] = check.verified.get(record["kind"], 0) + 1
                check.adopted += record["origin"] == "adopted"
        for kind, keys in needed.items():
            for key in sorted(keys):
                path = self._path(kind, key)
                if (kind, key) in recorded:
                    continue
                (check.unhashed if path.exists() else check.missing).append(path)
        for folder, kind in (("checkpoints", "checkpoint"), ("dense", "dense")):
            where = self.root / folder
            if not where.is_dir():
                continue
            for path in sorted(where.iterdir()):
                key = path.name.removesuffix(".safetensors")
                known = path.suffix == ".safetensors" and (
                    (kind, key) in recorded or key in (referred if kind == "checkpoint" else bases)
                )
                if not known:
                    check.orphans.append(path)
        return check

    def integrity_check(self) -> list[str]:
        """SQLite's own check of the database file: ['ok'] when sound."""
        with self._connect() as con:
            return [row[0] for row in con.execute("PRAGMA integrity_check")]

    def log_dir(self, backend: str) -> Path:
        """Where `--log BACKEND` writes when given no location (the driver's tracking thread)."""
        return self.root / LOG_DIRS[backend]

    def rekey(self, steps: dict[str, str], dense: dict[str, str]) -> None:
        """Rename stored steps and dense models (old key -> new key): files first, then the rows
        in one transaction; a rerun after a kill finishes the job (see `migrate.py`). Rows that
        matched their digest get the digest of their new key."""
        for kind, mapping in (("checkpoint", steps), ("dense", dense)):
            for old, new in mapping.items():
                if self._path(kind, old).exists() and not self._path(kind, new).exists():
                    self._path(kind, old).rename(self._path(kind, new))
        with self.transaction() as con:
            for old, new in steps.items():
                rows = con.execute("SELECT * FROM steps WHERE step_key=?", (old,)).fetchall()
                sound = [(r["run_id"], r["step"]) for r in rows if digest_ok(r)]
                con.execute("UPDATE steps SET step_key=? WHERE step_key=?", (new, old))
                for where in sound:
                    self._seal(con, *where)
            for old, new in dense.items():
                con.execute("UPDATE runs SET base_id=? WHERE base_id=?", (new, old))
            for kind, mapping in (("checkpoint", steps), ("dense", dense)):
                for old, new in mapping.items():
                    con.execute(
                        "UPDATE OR REPLACE files SET key=? WHERE kind=? AND key=?", (new, kind, old)
                    )

    # ------------------------------------------------------------------ claims
    def claim(
        self,
        kind: str,
        key: str,
        owner: str,
        seen: float | None,
        may_take: Callable[[str, float], bool],
    ) -> str:
        """Claim a step (or dense model) for `owner`, in one transaction. 'stored': its file
        was written since the record the caller saw (`seen`: that record's written_at, None
        when there was none); 'busy': another owner holds it and `may_take(owner, heartbeat)`
        says no; 'claimed': it is `owner`'s now (a claim `may_take` allows is taken over)."""
        with self.transaction() as con:
            record = con.execute(
                "SELECT written_at FROM files WHERE kind=? AND key=?", (kind, key)
            ).fetchone()
            if record is not None and record["written_at"] != seen:
                return "stored"
            held = con.execute(
                "SELECT owner, heartbeat FROM claims WHERE kind=? AND key=?", (kind, key)
            ).fetchone()
            if held and held["owner"] != owner and not may_take(held["owner"], held["heartbeat"]):
                return "busy"
            con.execute(
                "INSERT OR REPLACE INTO claims (kind, key, owner, heartbeat) VALUES (?, ?, ?, ?)",
                (kind, key, owner, time.time()),
            )
            return "claimed"

    def heartbeat(self, owner: str) -> None:
        with self.transaction() as con:
            con.execute("UPDATE claims SET heartbeat=? WHERE owner=?", (time.time(), owner))

    def release(self, owner: str, kind: str | None = None, key: str | None = None) -> None:
        """Drop `owner`'s claim on one step / dense model, or all of its claims."""
        if not self.exists():
            return
        with self.transaction() as con:
            self._release(con, owner, kind, key)

    @staticmethod
    def _release(
        con: sqlite3.Connection, owner: str, kind: str | None = None, key: str | None = None
    ) -> None:
        if kind is None:
            con.execute("DELETE FROM claims WHERE owner=?", (owner,))
        else:
            con.execute("DELETE FROM claims WHERE owner=? AND kind=? AND key=?", (owner, kind, key))

    def claims(self) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        with self._connect() as con:
            return [dict(r) for r in con.execute("SELECT * FROM claims ORDER BY kind, key")]

    # ------------------------------------------------------------------ tables
    def frame(self, table: str):
        """A whole table as a pandas DataFrame."""
        import pandas as pd

        if table not in TABLES:
            raise PrunebenchError(f"unknown table '{table}' (known: {', '.join(TABLES)})")
        with self._connect() as con:
            return pd.read_sql_query(f"SELECT * FROM {table}", con)

    def steps_with_runs(self):
        """One row per pruning step, with the run's fields (regime, seed, ...) beside it; read
        through `results.load_results`, which adds the runs without steps. Blobs (per-example
        outcomes) are left out: see `outcomes`."""
        import pandas as pd

        steps = ", ".join(f"s.{c}" for c, kind in STEP_COLUMNS.items() if kind != "BLOB")
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT r.name, r.status, r.regime, r.target AS run_target, r.structure, "
                "r.criterion, r.scope, r.seed, r.model, r.dataset, r.task, r.metric, r.base_id, "
                "r.n_steps, r.dense_test_top1, r.dense_test_top5, r.dense_test_ppl, "
                f"r.dense_params, {steps} FROM steps s JOIN runs r USING (run_id) "
                "ORDER BY r.started_at, s.run_id, s.step",
                con,
            )

    def outcomes(self):
        """run_id, step, test_outcomes of every step that stored per-example outcomes."""
        import pandas as pd

        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT run_id, step, test_outcomes FROM steps WHERE test_outcomes IS NOT NULL",
                con,
            )


def _rollback(con: sqlite3.Connection) -> None:
    """Roll back what is open (SQLite may have done so itself, e.g. on a full disk)."""
    if con.in_transaction:
        with suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def open_existing(root: Path | str) -> Store:
    """A Store for a directory that must already hold results (for read-only commands)."""
    if not (Path(root) / DB_NAME).exists():
        raise PrunebenchError(f"'{root}' holds no {DB_NAME}; run `prunebench run` with --results")
    return Store(root)


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
