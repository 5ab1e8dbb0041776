"""What results.sqlite holds: every table's columns, declared once, and the additive migration
that brings a database made by an older version up to them (new nullable columns and tables).

Layout of a results directory:
    results.sqlite                     runs, steps, epochs, step_metrics (evaluations of a
                                       stored step), files (sha256 of each file), claims
    dense/<base_id>.safetensors        pretrained dense models
    checkpoints/<step_key>.safetensors the state after each computed pruning step
    mlruns/, tensorboard/              default destinations of --log mlflow / tensorboard
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

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
    # the test metric at chance (majority class; a uniform vocabulary's perplexity), issue 23
    "chance_metric": "REAL",
    "device": "TEXT",
    "schema_version": "INTEGER",
    "started_at": "TEXT",
    "finished_at": "TEXT",
    "digest": "TEXT",  # sha256 of the row's stored values (digests.row_digest); NULL: earlier
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
    # adaptive: the share of the remaining weights the rule chose (a step that goes to the
    # target instead prunes what is left to it: increment / (1 - previous target))
    "rule_rate": "REAL",
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
    "digest": "TEXT",  # sha256 of the row's stored values (digests.row_digest); NULL: earlier
}

# Evaluations of a stored step (eval: in the config): they belong to the step, not to a run
# (runs that share a step share them) and are not part of its key (evaluating again trains
# nothing). `setting` is the digest of what was evaluated (the text file's sha256, context and
# stride; the task files, limit, few-shot count and lm-eval version), so a changed file or
# setting is evaluated anew beside the old value.
STEP_METRIC_COLUMNS: dict[str, str] = {
    "step_key": "TEXT NOT NULL",
    "name": "TEXT NOT NULL",  # e.g. ppl (strided, the text file) or TASK/acc (lm-eval)
    "setting": "TEXT NOT NULL",
    "value": "REAL",
    "setting_json": "TEXT",  # what `setting` digests, readable
    "seconds": "REAL",  # of the whole evaluation this value came from
    # per-example outcomes behind the value (store/example_outcomes.py: right/wrong per lm-eval
    # document, NLL per perplexity window), for the report's paired intervals; NULL where none
    "outcomes": "BLOB",
    "created_at": "TEXT",
    "digest": "TEXT",  # sha256 of the row's stored values (digests.row_digest)
}

FILE_COLUMNS: dict[str, str] = {
    "kind": "TEXT NOT NULL",  # checkpoint | dense
    "key": "TEXT NOT NULL",  # step key | base id
    "sha256": "TEXT NOT NULL",
    "bytes": "INTEGER",
    "origin": "TEXT",  # written | adopted (an earlier version's file, hashed on first read)
    "written_at": "REAL",  # time.time(): tells a rewrite from the record seen before
}

LEASE_COLUMNS: dict[str, str] = {
    "kind": "TEXT NOT NULL",  # checkpoint | dense
    "key": "TEXT NOT NULL",
    "owner": "TEXT NOT NULL",
    "heartbeat": "REAL NOT NULL",  # time.time() of the owner's last sign of life
}

# Leases were called claims when databases in use were made: the table keeps that name, so that
# those databases open as they are (renaming it would strand the leases a live process holds).
LEASE_TABLE = "claims"

TABLES = {
    "runs": (RUN_COLUMNS, ""),
    "steps": (STEP_COLUMNS, ", PRIMARY KEY (run_id, step)"),
    "epochs": (EPOCH_COLUMNS, ", PRIMARY KEY (run_id, step, epoch)"),
    "step_metrics": (STEP_METRIC_COLUMNS, ", PRIMARY KEY (step_key, name, setting)"),
    "files": (FILE_COLUMNS, ", PRIMARY KEY (kind, key)"),
    LEASE_TABLE: (LEASE_COLUMNS, ", PRIMARY KEY (kind, key)"),
}


def migrate(con: sqlite3.Connection) -> None:
    """Create missing tables and add missing columns (inside the caller's transaction)."""
    for table, (columns, extra) in TABLES.items():
        body = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body}{extra})")
        have = {row["name"] for row in con.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    con.execute("CREATE INDEX IF NOT EXISTS steps_by_key ON steps (step_key)")


def check_columns(table: str, names) -> None:
    """A KeyError naming the first of `names` that `table` does not declare (before any SQL is
    built from them)."""
    unknown = [k for k in names if k not in TABLES[table][0]]
    if unknown:
        raise KeyError(f"{table} has no column '{unknown[0]}'")


def insert(con: sqlite3.Connection, table: str, row: dict[str, Any], upsert: str) -> None:
    """INSERT one row, refusing a column the table does not declare (a KeyError naming it)."""
    check_columns(table, row)
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con.execute(f"INSERT {upsert} INTO {table} ({names}) VALUES ({marks})", list(row.values()))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
