"""The `step_metrics` table: evaluations of stored steps (the config's `eval:`), keyed by step
key, metric name and setting. They belong to the step, so runs sharing a step share them, and
they are outside its key: evaluating a stored step again computes nothing but the evaluation.
A dense model's evaluations are stored under `dense_key(base_id)`.
Rows land in one transaction with their digests; readers see only rows that match theirs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prunebench.store.connection import Database
from prunebench.store.digests import digest_ok, seal
from prunebench.store.schema import insert, now

DENSE = "dense:"  # the step key under which a dense model's evaluations are stored


def dense_key(base_id: str) -> str:
    """The key of the evaluations of dense model `base_id` (the reference of its runs)."""
    return f"{DENSE}{base_id}"


def write_metrics(db: Database, rows: Iterable[dict[str, Any]]) -> None:
    """Metric rows (step_key, name, setting, value, setting_json, seconds) in one transaction,
    each replacing an earlier row of the same step, name and setting."""
    stamp = now()
    with db.transaction() as con:
        for row in rows:
            row = {**row, "created_at": row.get("created_at") or stamp}
            row.pop("digest", None)
            insert(con, "step_metrics", row, "OR REPLACE")
            seal(con, "step_metrics", row["step_key"], row["name"], row["setting"])


def step_metrics(db: Database, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The metric rows (of the steps `keys`, or all) that match their digest, oldest first."""
    if not db.exists():
        return []
    query, args = "SELECT * FROM step_metrics", ()
    if keys is not None:  # only those rows read (and digest-checked)
        args = tuple(dict.fromkeys(keys))
        query += f" WHERE step_key IN ({', '.join('?' * len(args))})"
    with db.connect() as con:
        rows = con.execute(f"{query} ORDER BY created_at, name", args)
        return [dict(r) for r in rows if digest_ok(r, "step_metrics") is not False]


def evaluated(db: Database, keys: Iterable[str]) -> set[tuple[str, str]]:
    """(step_key, setting) of the evaluations stored whole and sound for `keys`."""
    return {(r["step_key"], r["setting"]) for r in step_metrics(db, keys)}
