"""Row digests: the sha256 of a stored row's values, written in the transaction that writes the
row and computed from the row as SQLite gives it back, so that a value changed afterwards (by
hand, by a tool, by a damaged disk) no longer matches."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from prunebench.store.schema import STEP_COLUMNS

DIGEST_FORMAT = "prunebench-row/1"

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


def seal(con: sqlite3.Connection, run_id: str, step: int) -> None:
    """Digest a step row as SQLite gives it back (NaN stored as NULL, REAL affinity applied)."""
    where = (run_id, step)
    stored = con.execute("SELECT * FROM steps WHERE run_id=? AND step=?", where).fetchone()
    con.execute(
        "UPDATE steps SET digest=? WHERE run_id=? AND step=?",
        (row_digest(dict(stored)), *where),
    )
