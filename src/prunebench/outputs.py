"""Where a command will write, checked before anything is computed, and how it writes.

A results path that is a file, or a directory on a read-only file system, used to fail at the
first write: after minutes of pretraining. These checks write nothing (no probe files, no
directories): they look at the path and at the nearest directory that exists. What they cannot
foresee (a full disk, /proc) `write_file` turns into one line, never a half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path

from prunebench.errors import PrunebenchError, StorageError


def _nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its closest existing ancestor (where mkdir would start)."""
    current = path.absolute()
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    return current


def _not_writable(directory: Path) -> str | None:
    """Why nothing can be created in `directory`, or None when it can."""
    if os.access(directory, os.W_OK | os.X_OK):
        return None
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        return "it is on a read-only file system"
    return "permission denied"


def _unusable(path: Path, option: str, exc: OSError) -> PrunebenchError:
    """An OS error on the path itself (a name too long, a loop of links) as one line."""
    return PrunebenchError(f"{option} '{path}' is not usable ({exc.strerror or exc}); give another")


def check_output_dir(path: Path, option: str) -> None:
    """`path` is a writable directory, or one that can be created (no file in the way)."""
    try:
        existing = _nearest_existing(path)
        if not existing.is_dir():
            where = "is a file" if existing == path.absolute() else f"is under a file, '{existing}'"
            raise PrunebenchError(f"{option} '{path}' {where}; give a directory")
        reason = _not_writable(existing)
    except OSError as exc:
        raise _unusable(path, option, exc) from None
    if reason is not None:
        raise PrunebenchError(
            f"{option} '{path}' cannot be written ('{existing}': {reason}); "
            "give a writable directory"
        )


def check_output_file(path: Path, option: str) -> None:
    """`path` can be written as a file: not a directory, in an existing writable directory."""
    try:
        if path.is_dir():
            raise PrunebenchError(f"{option} '{path}' is a directory; give a file name")
        parent = path.absolute().parent
        if not parent.is_dir():
            raise PrunebenchError(
                f"{option} '{path}': directory '{parent}' does not exist; create it first"
            )
        reason = _not_writable(parent)
        if reason is None and path.exists() and not os.access(path, os.W_OK):
            reason = "the file is read-only"
    except OSError as exc:
        raise _unusable(path, option, exc) from None
    if reason is not None:
        raise PrunebenchError(f"{option} '{path}' cannot be written ({reason})")


def write_file(path: Path, data: bytes) -> None:
    """`data` written whole to a temp file beside `path`, then renamed into place (a reader sees
    the old file or the new one, never a part); a write the system refuses is a one-line
    `StorageError` and leaves no temp file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
