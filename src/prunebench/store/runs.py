"""The `runs` table: one row per run (its config, dense model, status), created when the run
starts and marked running again when it resumes."""

from __future__ import annotations

import sqlite3
from typing import Any

from prunebench.store.connection import Database
from prunebench.store.digests import digest_ok, seal
from prunebench.store.schema import check_columns, insert, now


def start_run(db: Database, run_id: str, fields: dict[str, Any]) -> None:
    """Create the run row, or mark an existing one as running again (resume); an existing row
    that no longer matches its digest gets `fields` written again (repaired, not trusted)."""
    with db.transaction() as con:
        found = con.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if found:
            repair = digest_ok(found, "runs") is False
            again = {**(fields if repair else {}), "status": "running", "error": None}
            _update(con, run_id, {**again, "finished_at": None}, reseal=repair)
        else:
            row = {"run_id": run_id, "status": "running", "started_at": now(), **fields}
            insert(con, "runs", row, "")
            seal(con, "runs", run_id)


def update_run(db: Database, run_id: str, fields: dict[str, Any]) -> None:
    with db.transaction() as con:
        _update(con, run_id, fields)


def _update(
    con: sqlite3.Connection, run_id: str, fields: dict[str, Any], reseal: bool = False
) -> None:
    """Set `fields` of a run and digest the row again: a row that matched its digest before
    matches it after; one that did not keeps failing, unless `reseal` (its fields were all
    written again); an earlier version's stays undigested (rows are never blessed after the
    fact)."""
    check_columns("runs", fields)
    before = con.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
    sound = reseal or (before is not None and digest_ok(before, "runs") is True)
    sets = ", ".join(f"{k}=?" for k in fields)
    con.execute(f"UPDATE runs SET {sets} WHERE run_id=?", [*fields.values(), run_id])
    if sound:
        seal(con, "runs", run_id)


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
