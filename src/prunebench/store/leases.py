"""Leases: how several processes share one results directory. A process takes a lease on a step
(or a dense model) before computing it, keeps its leases' heartbeat fresh, and drops the lease in
the transaction that stores the result. The policy (when a lease may be taken over) is the
caller's. (Stored in the table `claims`, the name leases had when existing databases were made.)"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from prunebench.store.connection import Database
from prunebench.store.schema import LEASE_TABLE

MayTake = Callable[[str, float], bool]  # (owner, heartbeat) of a held lease -> may it be taken?


def take(
    db: Database, kind: str, key: str, owner: str, seen: float | None, may_take: MayTake
) -> str:
    """Lease a step (or dense model) to `owner`, in one transaction. 'stored': its file was
    written since the record the caller saw (`seen`: that record's written_at, None when there
    was none); 'busy': another owner holds it and `may_take(owner, heartbeat)` says no;
    'leased': it is `owner`'s now (a lease `may_take` allows is taken over)."""
    with db.transaction() as con:
        record = con.execute(
            "SELECT written_at FROM files WHERE kind=? AND key=?", (kind, key)
        ).fetchone()
        if record is not None and record["written_at"] != seen:
            return "stored"
        held = con.execute(
            f"SELECT owner, heartbeat FROM {LEASE_TABLE} WHERE kind=? AND key=?", (kind, key)
        ).fetchone()
        if held and held["owner"] != owner and not may_take(held["owner"], held["heartbeat"]):
            return "busy"
        con.execute(
            f"INSERT OR REPLACE INTO {LEASE_TABLE} (kind, key, owner, heartbeat) "
            "VALUES (?, ?, ?, ?)",
            (kind, key, owner, time.time()),
        )
        return "leased"


def heartbeat(db: Database, owner: str) -> None:
    with db.transaction() as con:
        con.execute(f"UPDATE {LEASE_TABLE} SET heartbeat=? WHERE owner=?", (time.time(), owner))


def release(db: Database, owner: str, kind: str | None = None, key: str | None = None) -> None:
    """Drop `owner`'s lease on one step / dense model, or all of its leases."""
    if not db.exists():
        return
    with db.transaction() as con:
        release_in(con, owner, kind, key)


def release_in(
    con: sqlite3.Connection, owner: str, kind: str | None = None, key: str | None = None
) -> None:
    """`release` inside the caller's transaction (the one that stores the leased result)."""
    if kind is None:
        con.execute(f"DELETE FROM {LEASE_TABLE} WHERE owner=?", (owner,))
    else:
        con.execute(
            f"DELETE FROM {LEASE_TABLE} WHERE owner=? AND kind=? AND key=?", (owner, kind, key)
        )


def held(db: Database) -> list[dict[str, Any]]:
    """Every lease held now (kind, key, owner, heartbeat)."""
    if not db.exists():
        return []
    with db.connect() as con:
        return [dict(r) for r in con.execute(f"SELECT * FROM {LEASE_TABLE} ORDER BY kind, key")]
