"""The `steps` and `epochs` tables: a step's row and its epoch rows land together, in one
transaction, with the row's digest; `stored_steps` is the one answer to "which steps are stored
whole and sound" (a row that matches its digest AND a checkpoint that matches its hash)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import torch

from prunebench.store.checkpoints import interrupts_held, sha256_file, stage_tensors
from prunebench.store.connection import Database
from prunebench.store.digests import RowCheck, check_rows, digest_ok, seal
from prunebench.store.files import checkpoint_path, hashes, place
from prunebench.store.leases import release_in
from prunebench.store.schema import insert, now

StepRows = list[tuple[dict[str, Any], list[dict[str, Any]]]]  # (step row, its epoch rows)


def write_steps(db: Database, items: StepRows) -> None:
    """Several (row, epochs) pairs in ONE transaction (each replacing a previous attempt): a
    step shared by many runs of a sweep lands for all of them or for none, so a killed sweep
    never leaves a partial copy."""
    with db.transaction() as con:
        _write_rows(con, items)


def commit_step(
    db: Database,
    step_key: str,
    state: tuple[dict[str, torch.Tensor], dict[str, Any]],
    items: StepRows,
    owner: str | None = None,
) -> None:
    """A computed step: its checkpoint (written whole first, then renamed into place), the
    checkpoint's sha256 and the rows (`write_steps`) in one transaction that also drops
    `owner`'s lease on the step. Killed or refused (disk full: `StorageError`) at any point,
    the step is stored whole or not at all; Ctrl-C meanwhile waits until it is stored."""
    with interrupts_held():
        staged = stage_tensors(checkpoint_path(db.root, step_key), *state)
        try:
            with db.transaction() as con:
                place(con, "checkpoint", step_key, staged)
                _write_rows(con, items)
                if owner is not None:
                    release_in(con, owner, "checkpoint", step_key)
        finally:
            staged.discard()


def _write_rows(con: sqlite3.Connection, items: StepRows) -> None:
    stamp = now()
    for row, epochs in items:
        row = {**row, "created_at": row.get("created_at") or stamp}
        row.pop("digest", None)
        where = (row["run_id"], row["step"])
        con.execute("DELETE FROM epochs WHERE run_id=? AND step=?", where)
        insert(con, "steps", row, "OR REPLACE")
        for epoch in epochs:
            epoch = {**epoch, "run_id": row["run_id"], "step": row["step"]}
            epoch.pop("digest", None)
            insert(con, "epochs", epoch, "")
            seal(con, "epochs", *where, epoch["epoch"])
        seal(con, "steps", *where)


def steps(db: Database, run_id: str) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    with db.connect() as con:
        rows = con.execute("SELECT * FROM steps WHERE run_id=? ORDER BY step", (run_id,))
        return [dict(r) for r in rows]


def epochs(db: Database, run_id: str, step: int) -> list[dict[str, Any]]:
    with db.connect() as con:
        rows = con.execute(
            "SELECT * FROM epochs WHERE run_id=? AND step=? ORDER BY epoch", (run_id, step)
        )
        return [dict(r) for r in rows]


def stored_steps(
    db: Database, keys: Iterable[str] | None = None, damaged: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The steps that are stored whole and sound: a row that matches its digest AND a
    checkpoint that matches the sha256 recorded when it was written (an earlier version's,
    unrecorded, is taken as it is). step_key -> that row, preferring the computed one. Only
    these are resumed from or reused. With `keys`, only those are looked at (and hashed);
    `damaged` collects the keys left out for a mismatch, with the reason in one line."""
    if not db.exists():
        return {}
    wanted = None if keys is None else set(keys)
    sources: dict[str, dict[str, Any]] = {}
    failing: set[str] = set()
    query, args, among = "SELECT * FROM steps", [], ""
    if wanted is not None and len(wanted) <= 100:  # a few keys: no full scan
        among = f"step_key IN ({', '.join('?' for _ in wanted)})"
        query += f" WHERE {among}"
        args = sorted(wanted)
    with db.connect() as con:
        bad_epochs = _bad_epochs(con, among, args)
        rows = con.execute(f"{query} ORDER BY reused DESC, created_at DESC", args)
        for found in rows:  # later rows win: computed (reused=0) and oldest last
            key = found["step_key"]
            if wanted is not None and key not in wanted:
                continue
            if digest_ok(found) is False or (found["run_id"], found["step"]) in bad_epochs:
                failing.add(key)
            else:
                sources[key] = dict(found)
        recorded = hashes(con, "checkpoint")
    notes = {
        k: f"every row of step {k} (or of its epochs) fails its digest"
        for k in failing - set(sources)
    }
    out: dict[str, dict[str, Any]] = {}
    for key, row in sources.items():
        path = checkpoint_path(db.root, key)
        if not path.exists():
            continue
        if key in recorded and sha256_file(path) != recorded[key]:
            notes[key] = f"{path} does not match the sha256 recorded when it was written"
            continue
        out[key] = row
    if damaged is not None:
        damaged.update(notes)
    return out


def _bad_epochs(con: sqlite3.Connection, among: str = "", args=()) -> set[tuple[str, int]]:
    """(run_id, step) of the steps that have an epoch row failing its digest; `among`: a
    condition on the steps table (their step keys), so that resuming one step digests its own
    epochs rather than every epoch row of the database."""
    query = "SELECT * FROM epochs WHERE digest IS NOT NULL"
    if among:
        query = (
            "SELECT epochs.* FROM epochs JOIN steps USING (run_id, step) "
            f"WHERE epochs.digest IS NOT NULL AND steps.{among}"
        )
    rows = con.execute(query, list(args))
    return {(r["run_id"], r["step"]) for r in rows if digest_ok(r, "epochs") is False}


def rows_of(db: Database, step_key: str) -> list[dict[str, Any]]:
    """Every row of this step key (one per run through it) that does not fail its digest."""
    if not db.exists():
        return []
    with db.connect() as con:
        rows = con.execute("SELECT * FROM steps WHERE step_key=?", (step_key,))
        return [dict(r) for r in rows if digest_ok(r) is not False]


def run_steps(db: Database, verified: bool = False) -> dict[str, dict[int, str]]:
    """run_id -> {step: step_key} of every stored row (`verified`: of the rows that do not fail
    their digest)."""
    out: dict[str, dict[int, str]] = {}
    if not db.exists():
        return out
    with db.connect() as con:
        for row in con.execute("SELECT * FROM steps"):
            if not verified or digest_ok(row) is not False:
                out.setdefault(row["run_id"], {})[row["step"]] = row["step_key"]
    return out


def row_check(db: Database) -> RowCheck:
    """Every row of runs, steps and epochs against its digest."""
    if not db.exists():
        return RowCheck()
    with db.connect() as con:
        return check_rows(con)
