"""The results directory: one SQLite database (runs, steps, epochs) plus safetensors files.

This is the only module that knows paths and SQL. Every write is one transaction; a step's row
and its epoch rows land together or not at all. Columns are declared once below; a database made
by an older version gains new (nullable) columns when opened.

Layout of a results directory:
    results.sqlite                     runs, steps, epochs
    dense/<base_id>.safetensors        pretrained dense models
    checkpoints/<step_key>.safetensors the state after each computed pruning step
    mlruns/, tensorboard/              default destinations of --log mlflow / tensorboard
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from prunebench.checkpoints import load_tensors, save_tensors
from prunebench.errors import PrunebenchError

DB_NAME = "results.sqlite"
LOG_DIRS = {"mlflow": "mlruns", "tensorboard": "tensorboard"}  # --log defaults, per backend

RUN_COLUMNS: dict[str, str] = {
    "run_id": "TEXT PRIMARY KEY",
    "name": "TEXT",
    "status": "TEXT",  # running | done | failed
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
    "best_epoch": "INTEGER",
    "best_val_loss": "REAL",
    "best_val_metric": "REAL",
    "test_loss": "REAL",
    "test_top1": "REAL",
    "test_top5": "REAL",
    "test_ppl": "REAL",
    "test_outcomes": "BLOB",  # per-example test results (prunebench.outcomes), for paired tests
    "epochs": "INTEGER",  # fine-tuning epochs of this step
    "cumulative_epochs": "INTEGER",
    "stopped_early": "INTEGER",
    "calibration_samples": "INTEGER",
    "seconds": "REAL",
    "reused": "INTEGER",  # 1 when copied from an identical step computed earlier
    "created_at": "TEXT",
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

TABLES = {
    "runs": (RUN_COLUMNS, ""),
    "steps": (STEP_COLUMNS, ", PRIMARY KEY (run_id, step)"),
    "epochs": (EPOCH_COLUMNS, ", PRIMARY KEY (run_id, step, epoch)"),
}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self.root.mkdir(parents=True, exist_ok=True)
            self._ready = True
            with self._connect() as con:
                self._migrate(con)
        con = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
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
        stamp = now()
        with self.transaction() as con:
            for row, epochs in items:
                row = {**row, "created_at": row.get("created_at") or stamp}
                con.execute(
                    "DELETE FROM epochs WHERE run_id=? AND step=?", (row["run_id"], row["step"])
                )
                self._insert(con, "steps", row, "OR REPLACE")
                for epoch in epochs:
                    self._insert(
                        con, "epochs", {**epoch, "run_id": row["run_id"], "step": row["step"]}, ""
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
        """A row of any run for this step key, preferring the one that was computed."""
        if not self.exists():
            return None
        with self._connect() as con:
            row = con.execute(
                "SELECT * FROM steps WHERE step_key=? ORDER BY reused, created_at LIMIT 1",
                (step_key,),
            ).fetchone()
        return dict(row) if row else None

    def stored_steps(self) -> dict[str, dict[str, Any]]:
        """The steps that are stored whole (a row AND its checkpoint): step_key -> run_id, step,
        epochs, cumulative_epochs of one row per key, preferring the computed one. Only these
        are resumed from or reused."""
        index: dict[str, dict[str, Any]] = {}
        if not self.exists():
            return index
        with self._connect() as con:
            rows = con.execute(
                "SELECT step_key, run_id, step, epochs, cumulative_epochs FROM steps "
                "ORDER BY reused DESC, created_at DESC"
            )
            for row in rows:  # later rows win: computed (reused=0) and oldest last
                index[row["step_key"]] = dict(row)
        return {k: v for k, v in index.items() if self.checkpoint_path(k).exists()}

    def run_steps(self) -> dict[str, dict[int, str]]:
        """run_id -> {step: step_key} of every stored row."""
        out: dict[str, dict[int, str]] = {}
        if not self.exists():
            return out
        with self._connect() as con:
            for row in con.execute("SELECT run_id, step, step_key FROM steps"):
                out.setdefault(row["run_id"], {})[row["step"]] = row["step_key"]
        return out

    # ------------------------------------------------------------------ files
    def checkpoint_path(self, step_key: str) -> Path:
        return self.root / "checkpoints" / f"{step_key}.safetensors"

    def save_checkpoint(
        self, step_key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
    ) -> Path:
        return save_tensors(self.checkpoint_path(step_key), tensors, meta)

    def load_checkpoint(self, step_key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return load_tensors(self.checkpoint_path(step_key))

    def dense_path(self, base_id: str) -> Path:
        return self.root / "dense" / f"{base_id}.safetensors"

    def save_dense(
        self, base_id: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
    ) -> Path:
        return save_tensors(self.dense_path(base_id), tensors, meta)

    def load_dense(self, base_id: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The stored dense model's tensors and metadata, or None when there is none yet."""
        path = self.dense_path(base_id)
        return load_tensors(path) if path.exists() else None

    def log_dir(self, backend: str) -> Path:
        """Where `--log BACKEND` writes when given no location (the driver's tracking thread)."""
        return self.root / LOG_DIRS[backend]

    def rekey(self, steps: dict[str, str], dense: dict[str, str]) -> None:
        """Rename stored steps and dense models (old key -> new key): files first, then the rows
        in one transaction; a rerun after a kill finishes the job (see `migrate.py`)."""
        for kind, mapping in (("checkpoint", steps), ("dense", dense)):
            path = self.checkpoint_path if kind == "checkpoint" else self.dense_path
            for old, new in mapping.items():
                if path(old).exists() and not path(new).exists():
                    path(old).rename(path(new))
        with self.transaction() as con:
            for old, new in steps.items():
                con.execute("UPDATE steps SET step_key=? WHERE step_key=?", (new, old))
            for old, new in dense.items():
                con.execute("UPDATE runs SET base_id=? WHERE base_id=?", (new, old))

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


def open_existing(root: Path | str) -> Store:
    """A Store for a directory that must already hold results (for read-only commands)."""
    if not (Path(root) / DB_NAME).exists():
        raise PrunebenchError(f"'{root}' holds no {DB_NAME}; run `prunebench run` with --results")
    return Store(root)


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
