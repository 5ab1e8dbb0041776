"""Renaming stored keys (for `engine/migrate.py`, which upgrades results of 0.1.0): files first,
then the rows in one transaction, so a rerun after a kill finishes the job."""

from __future__ import annotations

from prunebench.store.connection import Database
from prunebench.store.digests import digest_ok, seal
from prunebench.store.files import file_path


def rekey(db: Database, steps: dict[str, str], dense: dict[str, str]) -> None:
    """Rename stored steps and dense models (old key -> new key). Rows that matched their
    digest get the digest of their new key."""
    for kind, mapping in (("checkpoint", steps), ("dense", dense)):
        for old, new in mapping.items():
            source, target = file_path(db.root, kind, old), file_path(db.root, kind, new)
            if source.exists() and not target.exists():
                source.rename(target)
    with db.transaction() as con:
        for old, new in steps.items():
            rows = con.execute("SELECT * FROM steps WHERE step_key=?", (old,)).fetchall()
            sound = [(r["run_id"], r["step"]) for r in rows if digest_ok(r)]
            con.execute("UPDATE steps SET step_key=? WHERE step_key=?", (new, old))
            for where in sound:
                seal(con, "steps", *where)
            rows = con.execute("SELECT * FROM step_metrics WHERE step_key=?", (old,)).fetchall()
            metrics = [(r["name"], r["setting"]) for r in rows if digest_ok(r, "step_metrics")]
            con.execute(
                "UPDATE OR REPLACE step_metrics SET step_key=? WHERE step_key=?", (new, old)
            )
            for name, setting in metrics:
                seal(con, "step_metrics", new, name, setting)
        for old, new in dense.items():
            rows = con.execute("SELECT * FROM runs WHERE base_id=?", (old,)).fetchall()
            sound = [r["run_id"] for r in rows if digest_ok(r, "runs")]
            con.execute("UPDATE runs SET base_id=? WHERE base_id=?", (new, old))
            for rid in sound:
                seal(con, "runs", rid)
        for kind, mapping in (("checkpoint", steps), ("dense", dense)):
            for old, new in mapping.items():
                con.execute(
                    "UPDATE OR REPLACE files SET key=? WHERE kind=? AND key=?", (new, kind, old)
                )
