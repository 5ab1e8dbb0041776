"""The `runs` table: one row per run (its config, dense model, status), created when the run
starts and marked running again when it resumes."""

from __future__ import annotations

from typing import Any

from prunebench.store.connection import Database
from prunebench.store.schema import RUN_COLUMNS, insert, now


def start_run(db: Database, run_id: str, fields: dict[str, Any]) -> None:
    """Create the run row, or mark an existing one as running again (resume)."""
    with db.transaction() as con:
        exists = con.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if exists:
            con.execute(
                "UPDATE runs SET status='running', error=NULL, finished_at=NULL WHERE run_id=?",
                (run_id,),
            )
        else:
            row = {"run_id": run_id, "status": "running", "started_at": now(), **fields}
            insert(con, "runs", row, "")


def update_run(db: Database, run_id: str, fields: dict[str, Any]) -> None:
    unknown = [k for k in fields if k not in RUN_COLUMNS]
    if unknown:
        raise KeyError(f"runs has no column '{unknown[0]}'")
    sets = ", ".join(f"{k}=?" for k in fields)
    with db.transaction() as con:
        con.execute(f"UPDATE runs SET {sets} WHERE run_id=?", [*fields.values(), run_id])


def finish_run(db: Database, run_id: str, status: str, error: str | None = None) -> None:
    update_run(db, run_id, {"status": status, "error": error, "finished_at": now()})


def run(db: Database, run_id: str) -> dict[str, Any] | None:
    if not db.exists():
        return None
    with db.connect() as con:
        row = con.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return dict(row) if row else None


def runs(db: Database) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    with db.connect() as con:
        return [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY started_at, run_id")]
