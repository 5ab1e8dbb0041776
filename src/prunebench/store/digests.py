"""Row digests: the sha256 of a stored row's values, written in the transaction that writes the
row and computed from the row as SQLite gives it back, so that a value changed afterwards (by
hand, by a tool, by a damaged disk) no longer matches. Every table a report or `results` reads
carries one: runs, steps (with their per-example outcomes, by their sha256), epochs and the
evaluations of steps (step_metrics)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prunebench.store.schema import (
    EPOCH_COLUMNS,
    RUN_COLUMNS,
    STEP_COLUMNS,
    STEP_METRIC_COLUMNS,
)

DIGEST_FORMAT = "prunebench-row/1"

# When and how a row came to be, not what it measured: left out of its digest, so that equal
# results have equal digests (a resumed, a shared and a lone run's rows compare equal whole).
UNDIGESTED = {"digest", "seconds", "created_at", "reused"}

# table -> (its columns, the columns left out of its digest, the columns that find one row)
DIGESTED: dict[str, tuple[dict[str, str], set[str], tuple[str, ...]]] = {
    "runs": (RUN_COLUMNS, {"digest"}, ("run_id",)),
    "steps": (STEP_COLUMNS, UNDIGESTED, ("run_id", "step")),
    "epochs": (EPOCH_COLUMNS, {"digest", "seconds"}, ("run_id", "step", "epoch")),
    "step_metrics": (
        STEP_METRIC_COLUMNS,
        {"digest", "seconds", "created_at"},
        ("step_key", "name", "setting"),
    ),
}


def row_digest(row: Mapping[str, Any], table: str = "steps") -> str:
    """sha256 of a row's values as SQLite stores them: every declared column but those left
    out, NULLs left out (a column added later leaves older digests valid), floats exact (repr),
    bytes by their sha256. Steps keep the format they had before the other tables had digests."""
    columns, left_out, _ = DIGESTED[table]
    values: dict[str, Any] = {}
    for name in columns:
        value = row.get(name)
        if name in left_out or value is None:
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            value = {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
        values[name] = value
    form = DIGEST_FORMAT if table == "steps" else f"{DIGEST_FORMAT}:{table}"
    text = json.dumps([form, values], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def digest_ok(row: Mapping[str, Any] | sqlite3.Row, table: str = "steps") -> bool | None:
    """True: the row matches its digest; False: it was changed after it was written; None: no
    digest (written by an earlier version)."""
    row = dict(row)  # a sqlite3.Row, too
    if row.get("digest") is None:
        return None
    return row["digest"] == row_digest(row, table)


def seal(con: sqlite3.Connection, table: str, *key: Any) -> None:
    """Digest one row as SQLite gives it back (NaN stored as NULL, REAL affinity applied)."""
    where = " AND ".join(f"{name}=?" for name in DIGESTED[table][2])
    stored = con.execute(f"SELECT * FROM {table} WHERE {where}", key).fetchone()
    con.execute(
        f"UPDATE {table} SET digest=? WHERE {where}", (row_digest(dict(stored), table), *key)
    )


@dataclass
class RowCheck:
    """Every digested row against its digest."""

    rows: int = 0  # step rows
    sound: dict[str, int] = field(default_factory=dict)  # table -> rows matching their digest
    bad_steps: list[tuple[str, int]] = field(default_factory=list)  # (run_id, step)
    bad_epochs: list[tuple[str, int, int]] = field(default_factory=list)  # (run_id, step, epoch)
    bad_runs: list[str] = field(default_factory=list)
    bad_metrics: list[tuple[str, str, str]] = field(default_factory=list)  # (key, name, setting)
    undigested: dict[str, int] = field(default_factory=dict)  # table -> rows of an earlier version

    @property
    def bad(self) -> list[tuple[str, int]]:
        """The steps to write again: their row or one of their epoch rows fails its digest."""
        return sorted({*self.bad_steps, *((r, s) for r, s, _ in self.bad_epochs)})

    def named(self) -> list[str]:
        """The rows that fail their digest, as users name them."""
        return [
            *(f"run {r} (its runs row)" for r in self.bad_runs),
            *(f"run {r} step {s}" for r, s in self.bad_steps),
            *(f"run {r} step {s} epoch {e}" for r, s, e in self.bad_epochs),
            *(f"evaluation {n} of step {k}" for k, n, _ in self.bad_metrics),
        ]

    @property
    def problems(self) -> int:
        return (
            len(self.bad_steps) + len(self.bad_epochs) + len(self.bad_runs) + len(self.bad_metrics)
        )


def check_rows(con: sqlite3.Connection) -> RowCheck:
    """Every row of every digested table against its digest."""
    out = RowCheck()
    failing = {
        "runs": out.bad_runs,
        "steps": out.bad_steps,
        "epochs": out.bad_epochs,
        "step_metrics": out.bad_metrics,
    }
    for table, (_, _, key) in DIGESTED.items():
        order = ", ".join(key)
        for row in con.execute(f"SELECT * FROM {table} ORDER BY {order}"):
            out.rows += table == "steps"
            ok = digest_ok(row, table)
            if ok:
                out.sound[table] = out.sound.get(table, 0) + 1
            elif ok is None:
                out.undigested[table] = out.undigested.get(table, 0) + 1
            elif not ok:
                found = tuple(row[k] for k in key)
                failing[table].append(found[0] if table == "runs" else found)  # type: ignore[arg-type]
    return out
