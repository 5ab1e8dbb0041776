"""`prunebench verify`: a results directory checked against what was recorded when it was written.

SQLite's own `integrity_check` of results.sqlite, every step row against its digest, every file
against its sha256, files the database refers to but that are missing, and orphans (files
nothing refers to). Rows and files written by an earlier version carry no digest / hash: they
are counted as notes, not problems (the next run or sweep records the files' hashes on first
read). Everything is read, nothing is written; `Verification.problems` > 0 means exit code 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prunebench.errors import DamagedDatabase
from prunebench.store.database import Store, open_existing

SHOWN = 5  # items listed per finding; the rest are counted


@dataclass
class Verification:
    lines: list[str] = field(default_factory=list)
    problems: int = 0

    def problem(self, text: str, count: int = 1) -> None:
        self.lines.append(f"PROBLEM {text}")
        self.problems += count

    def note(self, text: str) -> None:
        self.lines.append(text)


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def verify(directory: Path | str) -> Verification:
    store = open_existing(directory)
    out = Verification()
    try:
        _check(store, out)
    except DamagedDatabase as exc:
        out.problem(f"{store.db_path.name}: {getattr(exc, 'reason', exc)}")
        out.note(
            f"{store.db_path.name} cannot be read: restore it from a backup, or run again into "
            "a new --results directory"
        )
    out.lines.append(
        f"verdict: {_plural(out.problems, 'problem')}" if out.problems else "verdict: all sound"
    )
    return out


def _check(store: Store, out: Verification) -> None:
    integrity = store.integrity_check()
    runs = store.runs()
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    rows = store.row_check()
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    summary = (
        f"{_plural(len(runs), 'run')} ({by_status or 'none'}), {_plural(rows.rows, 'step row')}"
    )
    if integrity == ["ok"]:
        out.note(f"{store.db_path.name}: integrity ok; {summary}")
    else:
        out.problem(f"{store.db_path.name}: integrity_check says {_listed(integrity)}")

    sound = rows.rows - len(rows.bad) - rows.undigested
    if sound or not rows.undigested:
        out.note(f"rows: {sound} match their digest")
    if rows.bad:
        shown = [f"run {r} step {s}" for r, s in rows.bad]
        out.problem(
            f"rows: {len(rows.bad)} do not match their digest (changed after they were "
            f"written): {_listed(shown)}",
            len(rows.bad),
        )
    if rows.undigested:
        out.note(f"rows: {rows.undigested} not digested (written by an earlier version)")

    files = store.file_check()

    def rel(paths: list[Path]) -> list[str]:
        return [str(p.relative_to(store.root)) for p in paths]

    checkpoints, dense = files.verified.get("checkpoint", 0), files.verified.get("dense", 0)
    adopted = (
        f" ({files.adopted} hashed on first read: an earlier version's)" if files.adopted else ""
    )
    out.note(
        f"files: {_plural(checkpoints, 'checkpoint')} and {_plural(dense, 'dense model')} "
        f"match their sha256{adopted}"
    )
    if files.mismatched:
        out.problem(
            f"files: {len(files.mismatched)} do not match the sha256 recorded when they were "
            f"written (damaged or modified; the next run recomputes them): "
            f"{_listed(rel(files.mismatched))}",
            len(files.mismatched),
        )
    if files.missing:
        out.problem(
            f"files: {len(files.missing)} missing that the database refers to: "
            f"{_listed(rel(files.missing))}",
            len(files.missing),
        )
    if files.unhashed:
        out.note(
            f"files: {len(files.unhashed)} not hashed (written by an earlier version; the next "
            "run or sweep records their hashes)"
        )
    leases = store.leases()
    if leases:
        oldest = max(time.time() - c["heartbeat"] for c in leases)
        out.note(
            f"leases: {len(leases)} held (steps being computed, or left by a killed process and "
            f"taken over by the next run); the oldest heartbeat is {oldest:.0f} s old"
        )
    if files.orphans:
        out.problem(
            f"orphans: {len(files.orphans)} files nothing in the database refers to (left by an "
            f"interrupted write, or copied in; safe to delete): {_listed(rel(files.orphans))}",
            len(files.orphans),
        )
    else:
        out.note("orphans: none")
