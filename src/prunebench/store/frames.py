"""Tables as pandas DataFrames, for `results.load_results` (the one reader of results)."""

from __future__ import annotations

import pandas as pd

from prunebench.errors import PrunebenchError
from prunebench.store.connection import Database
from prunebench.store.schema import STEP_COLUMNS, TABLES


def frame(db: Database, table: str) -> pd.DataFrame:
    """A whole table."""
    if table not in TABLES:
        raise PrunebenchError(f"unknown table '{table}' (known: {', '.join(TABLES)})")
    with db.connect() as con:
        return pd.read_sql_query(f"SELECT * FROM {table}", con)


def steps_with_runs(db: Database) -> pd.DataFrame:
    """One row per pruning step, with the run's fields (regime, seed, ...) beside it; read
    through `results.load_results`, which adds the runs without steps. Blobs (per-example
    outcomes) are left out: see `outcomes`."""
    steps = ", ".join(f"s.{c}" for c, kind in STEP_COLUMNS.items() if kind != "BLOB")
    with db.connect() as con:
        return pd.read_sql_query(
            "SELECT r.name, r.status, r.regime, r.target AS run_target, r.structure, "
            "r.criterion, r.scope, r.seed, r.model, r.dataset, r.task, r.metric, r.base_id, "
            "r.n_steps, r.dense_test_top1, r.dense_test_top5, r.dense_test_ppl, "
            f"r.dense_params, {steps} FROM steps s JOIN runs r USING (run_id) "
            "ORDER BY r.started_at, s.run_id, s.step",
            con,
        )


def outcomes(db: Database) -> pd.DataFrame:
    """run_id, step, test_outcomes of every step that stored per-example outcomes."""
    with db.connect() as con:
        return pd.read_sql_query(
            "SELECT run_id, step, test_outcomes FROM steps WHERE test_outcomes IS NOT NULL", con
        )
