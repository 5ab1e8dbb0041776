"""Weights on disk without pickle: safetensors written atomically, and local pretrained files.

A checkpoint is written to a temporary file in the same directory, hashed (sha256) and renamed
over the target, so a killed process leaves either the old file or the new one, never half a
file. Reading can check the file against the hash recorded when it was written.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from prunebench.errors import (
    CheckpointError,
    ChecksumMismatch,
    StorageError,
    without_unsafe_advice,
)

MASKS = "mask::"  # prefix of an unstructured step's keep masks in its checkpoint

META_KEY = "prunebench"
TMP_SUFFIX = ".tmp"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Staged:
    """A file written whole (fsynced) under a temporary name beside `path`, with its hash; the
    owner renames it into place (`os.replace(tmp, path)`) and then calls `discard`, which removes
    the temporary file if it is still there (the rename did not happen)."""

    tmp: Path
    path: Path
    sha256: str
    size: int

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C waits until a checkpoint is written or read whole, then interrupts as usual. A
    KeyboardInterrupt raised while torch's or safetensors' C code runs comes out as some other
    error ("could not determine the shape of object type ...") and would fail the run on an
    intact file; held, it marks the run interrupted and the same command resumes it. Only the
    main thread receives signals; elsewhere this does nothing."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield  # None: a handler not installed from Python, which cannot be put back
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)  # Python's own handler raises KeyboardInterrupt
        elif received and previous == signal.SIG_DFL:
            raise KeyboardInterrupt


def stage_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Staged:
    """Write `tensors` (copied to CPU, unshared) and JSON `meta` to a temporary file beside
    `path` and hash it; on any error nothing is left behind, and a disk that refuses the write
    (full, read-only) gives a one-line `StorageError`. Ctrl-C waits for the write."""
    staged = None
    try:
        with interrupts_held():
            staged = _stage(path, tensors, meta)
    except KeyboardInterrupt:  # held until the file was whole: nobody renames it now
        if staged is not None:
            staged.discard()
        raise
    return staged


def _stage(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Staged:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    try:
        save_file(plain, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        return Staged(tmp, path, sha256_file(tmp), tmp.stat().st_size)
    except (OSError, SafetensorError) as exc:  # disk full, read-only, I/O error
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StorageError(f"cannot write '{path}': {reason.rsplit('error: ', 1)[-1]}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Staged:
    """Atomically write `tensors` and `meta` to `path`; returns what was written (its hash)."""
    staged = stage_tensors(path, tensors, meta)
    try:
        os.replace(staged.tmp, path)
    finally:
        staged.discard()
    return staged


def load_tensors(
    path: Path, sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata written by `save_tensors`; with `sha256`, only if the file still
    has that hash (else `ChecksumMismatch`, naming the file). Ctrl-C waits for the read."""
    with interrupts_held():
        return _load(path, sha256)


def _load(path: Path, sha256: str | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if sha256 is not None and sha256_file(path) != sha256:
        raise ChecksumMismatch(
            f"'{path}' does not match the sha256 recorded when it was written: "
            "damaged or modified since"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get(META_KEY, "{}"))
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint '{path}' is not a readable safetensors file: {exc}"
        ) from None
    return tensors, meta


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a local .safetensors or .pth/.pt/.bin file (never unpickling code)."""
    if not path.exists():
        raise CheckpointError(f"weights file '{path}' does not exist")
    if path.suffix == ".safetensors":
        return load_tensors(path)[0]
    if path.suffix in {".pth", ".pt", ".bin"}:
        _check_zip(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # weights_only refuses pickled code with various errors
            raise CheckpointError(
                f"cannot read '{path}' as a weights-only state dict ({_load_failure(exc)}); "
                "it must hold tensors only: save model.state_dict() with torch.save, "
                "or use .safetensors"
            ) from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise CheckpointError(f"'{path}' does not hold a state dict")
        odd = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
        if odd is not None:
            raise CheckpointError(f"'{path}': '{odd}' is not a tensor; a state dict holds tensors")
        return state
    raise CheckpointError(
        f"weights file '{path}' has an unknown extension; use .safetensors, .pth, .pt or .bin"
    )


def _check_zip(path: Path) -> None:
    """A torch.save file is a zip archive: every member is checked against its CRC before
    torch reads it (torch does not), so that damaged bytes are refused, not trained on. A file
    in torch's legacy (non-zip) format has no checksums to check."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        why = None if bad is None else f"'{bad}' inside it fails its checksum (CRC)"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        why = f"its zip archive does not read ({type(exc).__name__}: {exc})"
    if why is not None:
        raise CheckpointError(f"weights file '{path}' is damaged: {why}; copy or download it again")


def _load_failure(exc: Exception) -> str:
    """The reason torch.load gave, in a few words: torch's own message runs to several lines
    and recommends `weights_only=False`, i.e. unpickling code from the file, which we never do
    (every sentence advising an unsafe load is left out)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        reason = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        reason = reason.split(". Please", 1)[0].split(" was not an allowed global", 1)[0]
        return without_unsafe_advice(reason.strip())
    reason = without_unsafe_advice(text).removeprefix("Weights only load failed.").strip()
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


def _skipped(key: str, skip: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in skip)


def check_fits(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, skip: tuple[str, ...] = ()
) -> None:
    """Raise a CheckpointError naming the first key or shape that does not match the model.

    Keys under a `skip` prefix (e.g. a classifier to re-initialise) are ignored both ways.
    """
    expected = {k: v for k, v in model.state_dict().items() if not _skipped(k, skip)}
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"{source} lacks '{key}' (shape {tuple(tensor.shape)})")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{source}: '{key}' has shape {tuple(state[key].shape)}, "
                f"the model expects {tuple(tensor.shape)}"
            )
        if _kind(state[key]) != _kind(tensor):  # e.g. integers where weights belong
            raise CheckpointError(
                f"{source}: '{key}' holds {state[key].dtype} values, the model expects "
                f"{tensor.dtype}"
            )
    extra = [k for k in state if k not in expected and not _skipped(k, skip)]
    if extra:
        raise CheckpointError(f"{source} has '{extra[0]}', which the model does not have")


def _kind(tensor: torch.Tensor) -> str:
    """What a value means, beyond its precision: float16 weights load into float32 ones."""
    if tensor.is_floating_point():
        return "float"
    return "complex" if tensor.is_complex() else "bool" if tensor.dtype == torch.bool else "int"


def load_weights(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, skip: tuple[str, ...] = ()
) -> None:
    check_fits(model, state, source, skip)
    model.load_state_dict(
        {k: v for k, v in state.items() if not _skipped(k, skip)}, strict=not skip
    )
