"""`Store`: one results directory (results.sqlite plus safetensors files) behind one object, so
that callers hold a single handle. It composes the parts and holds no SQL of its own:

- `schema`: the tables' columns, declared once; additive migrations on open;
- `connection`: lazy connections, transactions, sqlite3 errors as one line
  (`DamagedDatabase`, `StorageError`);
- `runs`, `steps` (with their epochs): rows, each write one transaction; `metrics`: the
  evaluations of stored steps (step_metrics);
- `digests`: every step row carries the sha256 of its stored values;
- `files`: checkpoints and dense models, renamed into place inside the transaction that records
  their sha256; reads checked against it; an earlier version's files adopted;
- `leases`: work locks that let several processes share one directory;
- `rekey`: renaming stored keys (migrations); `frames`: tables as pandas DataFrames.

Nothing touches the disk until the first write, so that a run failing its checks before any
compute leaves no directory behind; reads of a missing database are empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from prunebench.errors import PrunebenchError
from prunebench.store import files, frames
from prunebench.store import leases as lease_table
from prunebench.store import metrics as metric_table
from prunebench.store import rekey as rekeying
from prunebench.store import runs as run_table
from prunebench.store import steps as step_table
from prunebench.store.connection import Database
from prunebench.store.digests import RowCheck
from prunebench.store.files import FileCheck
from prunebench.store.leases import MayTake
from prunebench.store.schema import DB_NAME, LOG_DIRS
from prunebench.store.steps import StepRows

Tensors = tuple[dict[str, torch.Tensor], dict[str, Any]]  # a checkpoint's tensors and metadata


class Store:
    """The results directory `root`: every read and write of its database and files."""

    def __init__(self, root: Path | str) -> None:
        self.db = Database(root)
        self.root = self.db.root
        self.db_path = self.db.path

    def exists(self) -> bool:
        return self.db.exists()

    @contextmanager
    def held_open(self) -> Iterator[None]:
        """One idle connection held meanwhile (see `Database.held_open`: a sweep's many short
        transactions do not each pay for a WAL checkpoint)."""
        with self.db.held_open():
            yield

    def integrity_check(self) -> list[str]:
        """SQLite's own check of the database file: ['ok'] when sound."""
        return self.db.integrity_check()

    # ------------------------------------------------------------------ runs
    def start_run(self, run_id: str, fields: dict[str, Any]) -> None:
        run_table.start_run(self.db, run_id, fields)

    def update_run(self, run_id: str, fields: dict[str, Any]) -> None:
        run_table.update_run(self.db, run_id, fields)

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        run_table.finish_run(self.db, run_id, status, error)

    def run(self, run_id: str) -> dict[str, Any] | None:
        return run_table.run(self.db, run_id)

    def runs(self) -> list[dict[str, Any]]:
        return run_table.runs(self.db)

    # ------------------------------------------------------------------ steps
    def write_steps(self, items: StepRows) -> None:
        step_table.write_steps(self.db, items)

    def commit_step(
        self, step_key: str, state: Tensors, items: StepRows, owner: str | None = None
    ) -> None:
        step_table.commit_step(self.db, step_key, state, items, owner)

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        return step_table.steps(self.db, run_id)

    def epochs(self, run_id: str, step: int) -> list[dict[str, Any]]:
        return step_table.epochs(self.db, run_id, step)

    def stored_steps(
        self, keys: Iterable[str] | None = None, damaged: dict[str, str] | None = None
    ) -> dict[str, dict[str, Any]]:
        return step_table.stored_steps(self.db, keys, damaged)

    def stored_epochs(self, keys: Iterable[str]) -> dict[str, int]:
        """Step key -> fine-tuning epochs of the steps among `keys` already stored (what a
        dry run counts them with)."""
        return {key: row["epochs"] for key, row in self.stored_steps(keys).items()}

    def rows_of(self, step_key: str) -> list[dict[str, Any]]:
        return step_table.rows_of(self.db, step_key)

    def run_steps(self, verified: bool = False) -> dict[str, dict[int, str]]:
        return step_table.run_steps(self.db, verified)

    def write_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        metric_table.write_metrics(self.db, rows)

    def step_metrics(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return metric_table.step_metrics(self.db, keys)

    def evaluated(self, keys: Iterable[str]) -> set[tuple[str, str]]:
        return metric_table.evaluated(self.db, keys)

    def row_check(self) -> RowCheck:
        return step_table.row_check(self.db)

    # ------------------------------------------------------------------ files
    def checkpoint_path(self, step_key: str) -> Path:
        return files.checkpoint_path(self.root, step_key)

    def dense_path(self, base_id: str) -> Path:
        return files.dense_path(self.root, base_id)

    def log_dir(self, backend: str) -> Path:
        """Where `--log BACKEND` writes when given no location (the driver's tracking thread)."""
        return self.root / LOG_DIRS[backend]

    def written_at(self, kind: str) -> dict[str, float]:
        return files.written_at(self.db, kind)

    def file_record(self, kind: str, key: str) -> dict[str, Any] | None:
        return files.record(self.db, kind, key)

    def load_checkpoint(self, step_key: str) -> Tensors:
        return files.load_checkpoint(self.db, step_key)

    def save_dense(
        self,
        base_id: str,
        tensors: dict[str, torch.Tensor],
        meta: dict[str, Any],
        owner: str | None = None,
    ) -> Path:
        return files.save_dense(self.db, base_id, tensors, meta, owner)

    def load_dense(self, base_id: str) -> Tensors | None:
        return files.load_dense(self.db, base_id)

    def adopt_files(self) -> tuple[int, dict[str, str]]:
        return files.adopt(self.db)

    def file_check(self) -> FileCheck:
        return files.check(self.db)

    def rekey(self, steps: dict[str, str], dense: dict[str, str]) -> None:
        rekeying.rekey(self.db, steps, dense)

    # ------------------------------------------------------------------ leases
    def lease(self, kind: str, key: str, owner: str, seen: float | None, may_take: MayTake) -> str:
        """'leased', 'busy' or 'stored': see `leases.take`."""
        return lease_table.take(self.db, kind, key, owner, seen, may_take)

    def heartbeat(self, owner: str) -> None:
        lease_table.heartbeat(self.db, owner)

    def release(self, owner: str, kind: str | None = None, key: str | None = None) -> None:
        lease_table.release(self.db, owner, kind, key)

    def leases(self) -> list[dict[str, Any]]:
        return lease_table.held(self.db)

    # ------------------------------------------------------------------ tables
    def frame(self, table: str) -> pd.DataFrame:
        return frames.frame(self.db, table)

    def steps_with_runs(self) -> pd.DataFrame:
        return frames.steps_with_runs(self.db)

    def outcomes(self) -> pd.DataFrame:
        return frames.outcomes(self.db)


def open_existing(root: Path | str) -> Store:
    """A Store for a directory that must already hold results (for read-only commands)."""
    if not (Path(root) / DB_NAME).exists():
        raise PrunebenchError(f"'{root}' holds no {DB_NAME}; run `prunebench run` with --results")
    return Store(root)
