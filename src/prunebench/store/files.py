"""The files of a results directory and their records in `files`: every file is written whole
under a temporary name, hashed, and renamed into place INSIDE the transaction that records its
sha256 (`place`), so a file and its record land together; reads check the file against the
record (`ChecksumMismatch`). Files an earlier version wrote carry no record: see `adopt`."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from prunebench.errors import CheckpointError, StorageError
from prunebench.store.checkpoints import Staged, load_tensors, sha256_file, stage_tensors
from prunebench.store.connection import Database
from prunebench.store.leases import release_in


@dataclass
class FileCheck:
    verified: dict[str, int] = field(default_factory=dict)  # kind -> files matching their hash
    mismatched: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)  # recorded or referred to, not on disk
    unhashed: list[Path] = field(default_factory=list)  # an earlier version's, not adopted yet
    adopted: int = 0  # hashed on first read (written by an earlier version)
    orphans: list[Path] = field(default_factory=list)  # nothing in the database refers to them


def checkpoint_path(root: Path, step_key: str) -> Path:
    return root / "checkpoints" / f"{step_key}.safetensors"


def dense_path(root: Path, base_id: str) -> Path:
    return root / "dense" / f"{base_id}.safetensors"


def file_path(root: Path, kind: str, key: str) -> Path:
    return checkpoint_path(root, key) if kind == "checkpoint" else dense_path(root, key)


def hashes(con: sqlite3.Connection, kind: str) -> dict[str, str]:
    rows = con.execute("SELECT key, sha256 FROM files WHERE kind=?", (kind,))
    return {r["key"]: r["sha256"] for r in rows}


def written_at(db: Database, kind: str) -> dict[str, float]:
    """key -> when each recorded file of this kind was last written (see `leases.take`)."""
    if not db.exists():
        return {}
    with db.connect() as con:
        rows = con.execute("SELECT key, written_at FROM files WHERE kind=?", (kind,))
        return {r["key"]: r["written_at"] for r in rows}


def record(db: Database, kind: str, key: str) -> dict[str, Any] | None:
    """What was recorded when the file was written (sha256, bytes, origin, written_at)."""
    if not db.exists():
        return None
    with db.connect() as con:
        row = con.execute("SELECT * FROM files WHERE kind=? AND key=?", (kind, key)).fetchone()
    return dict(row) if row else None


def place(con: sqlite3.Connection, kind: str, key: str, staged: Staged) -> None:
    """Rename a staged file into place and record its hash (inside the caller's transaction:
    another process sees the file and its record together)."""
    try:
        os.replace(staged.tmp, staged.path)
    except OSError as exc:
        raise StorageError(f"cannot write '{staged.path}': {exc.strerror or exc}") from None
    con.execute(
        "INSERT OR REPLACE INTO files (kind, key, sha256, bytes, origin, written_at) "
        "VALUES (?, ?, ?, ?, 'written', ?)",
        (kind, key, staged.sha256, staged.size, time.time()),
    )


def load_checkpoint(db: Database, step_key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A step's checkpoint, checked against its recorded sha256 (`ChecksumMismatch`)."""
    found = record(db, "checkpoint", step_key)
    return load_tensors(checkpoint_path(db.root, step_key), found and found["sha256"])


def save_dense(
    db: Database,
    base_id: str,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    owner: str | None = None,
) -> Path:
    """Store a dense model (its file and sha256 together; drops `owner`'s lease on it)."""
    staged = stage_tensors(dense_path(db.root, base_id), tensors, meta)
    try:
        with db.transaction() as con:
            place(con, "dense", base_id, staged)
            if owner is not None:
                release_in(con, owner, "dense", base_id)
    finally:
        staged.discard()
    return staged.path


def load_dense(db: Database, base_id: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The stored dense model's tensors and metadata, or None when there is none yet;
    `ChecksumMismatch` when it no longer matches the sha256 recorded when it was written."""
    path = dense_path(db.root, base_id)
    if not path.exists():
        return None
    found = record(db, "dense", base_id)
    return load_tensors(path, found and found["sha256"])


def adopt(db: Database) -> tuple[int, dict[str, str]]:
    """Record the sha256 of files written by an earlier version (which recorded none): the
    checkpoints that step rows refer to and the dense models, each if it reads whole. This is
    trust on first use: such a file cannot be checked against anything before, but from now on
    it is, like every file written since. Returns how many were recorded and the checkpoints
    that do not read (step key -> reason), which are damaged."""
    if not db.exists():
        return 0, {}
    with db.connect() as con:
        if not _unrecorded(db.root, con):  # the common case: no write lock taken
            return 0, {}
    adopted, unreadable = 0, {}
    with db.transaction() as con:  # writers record files with their rows: no race
        for kind, key in _unrecorded(db.root, con):
            path = file_path(db.root, kind, key)
            try:
                load_tensors(path)
            except CheckpointError as exc:
                if kind == "checkpoint":
                    unreadable[key] = str(exc)
                continue
            con.execute(
                "INSERT INTO files (kind, key, sha256, bytes, origin, written_at) "
                "VALUES (?, ?, ?, ?, 'adopted', ?)",
                (kind, key, sha256_file(path), path.stat().st_size, time.time()),
            )
            adopted += 1
    return adopted, unreadable


def _unrecorded(root: Path, con: sqlite3.Connection) -> list[tuple[str, str]]:
    """(kind, key) of files on disk without a record: checkpoints that rows refer to, and every
    dense model."""
    found = []
    checkpoints = hashes(con, "checkpoint")
    for row in con.execute("SELECT DISTINCT step_key FROM steps"):
        key = row["step_key"]
        if key not in checkpoints and checkpoint_path(root, key).exists():
            found.append(("checkpoint", key))
    dense = hashes(con, "dense")
    folder = root / "dense"
    stems = sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []
    found += [("dense", k) for k in stems if k not in dense]
    return found


def check(db: Database) -> FileCheck:
    """Every file of the directory against the database: recorded files against their sha256,
    files that rows or runs refer to, and files nothing refers to (orphans: left by an
    interrupted write, or copied in)."""
    out = FileCheck()
    with db.connect() as con:
        records = [dict(r) for r in con.execute("SELECT * FROM files")]
        referred = {r["step_key"] for r in con.execute("SELECT DISTINCT step_key FROM steps")}
        runs = con.execute("SELECT base_id, run_id IN (SELECT run_id FROM steps) FROM runs")
        bases = {r[0]: bool(r[1]) for r in runs if r[0] is not None}  # -> the run has steps
    recorded = {(r["kind"], r["key"]) for r in records}
    needed = {
        "checkpoint": referred,
        "dense": {b for b, has_steps in bases.items() if has_steps},
    }
    for found in records:
        path = file_path(db.root, found["kind"], found["key"])
        if not path.exists():
            out.missing.append(path)
        elif sha256_file(path) != found["sha256"]:
            out.mismatched.append(path)
        else:
            out.verified[found["kind"]] = out.verified.get(found["kind"], 0) + 1
            out.adopted += found["origin"] == "adopted"
    for kind, keys in needed.items():
        for key in sorted(keys):
            path = file_path(db.root, kind, key)
            if (kind, key) in recorded:
                continue
            (out.unhashed if path.exists() else out.missing).append(path)
    for folder, kind in (("checkpoints", "checkpoint"), ("dense", "dense")):
        where = db.root / folder
        if not where.is_dir():
            continue
        for path in sorted(where.iterdir()):
            key = path.name.removesuffix(".safetensors")
            known = path.suffix == ".safetensors" and (
                (kind, key) in recorded or key in (referred if kind == "checkpoint" else bases)
            )
            if not known:
                out.orphans.append(path)
    return out
