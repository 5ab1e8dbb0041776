"""Per-example test outcomes as a compact blob: the raw material of paired comparisons.

A step's test metric is a mean over the test split; comparing two regimes honestly needs the
per-example results behind it (same examples, same order, for runs that share the data config),
so that test-set noise can be measured. Stored per evaluated step in `steps.test_outcomes`:

    classification: b"PBO" + version + b"C" + uint32 n + numpy.packbits(top-1 correct)
                    (10,000 test images -> 1,258 bytes)
    causal LM:      b"PBO" + version + b"N" + uint32 n + float32 NLL sum per sequence
                    + int32 scored tokens per sequence (8 bytes per sequence)

Where test examples come in groups (the document each language-model sequence was cut from;
a group column of `arrays`/`image_folder`/`python:` data), version 2 appends an int32 group id
per example, so that the report's intervals can be cluster-robust (report/uncertainty.py).
Without groups the blob stays version 1, byte for byte as before.

`unpack` turns either into per-example contributions whose plain mean is the metric's
"loss-like" value: top-1 accuracy for classification, mean token NLL (log perplexity) for
language models (each sequence's NLL sum divided by the mean token count per sequence).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"PBO"
VERSION = 1
GROUPED = 2  # the version with a group id per example appended
CORRECT, NLL = b"C", b"N"
_HEADER = struct.Struct("<3sB1sI")


def _groups_tail(groups: np.ndarray | None, n: int) -> tuple[int, bytes]:
    if groups is None:
        return VERSION, b""
    groups = np.asarray(groups, dtype="<i4").ravel()
    if groups.size != n:
        raise ValueError("one group id per example")
    return GROUPED, groups.tobytes()


def pack_correct(correct: np.ndarray, groups: np.ndarray | None = None) -> bytes:
    """Top-1 correct (bool per example, in test-split order) as packed bits; `groups`: an
    optional group id per example."""
    bits = np.asarray(correct, dtype=bool).ravel()
    version, tail = _groups_tail(groups, bits.size)
    packed = np.packbits(bits).tobytes()
    return _HEADER.pack(MAGIC, version, CORRECT, bits.size) + packed + tail


def pack_nll(nll: np.ndarray, tokens: np.ndarray, groups: np.ndarray | None = None) -> bytes:
    """Per-sequence NLL sums (nats) and scored-token counts; `groups`: the document of each
    sequence, where known."""
    nll = np.asarray(nll, dtype="<f4").ravel()
    tokens = np.asarray(tokens, dtype="<i4").ravel()
    if nll.size != tokens.size:
        raise ValueError("one token count per sequence")
    version, tail = _groups_tail(groups, nll.size)
    return _HEADER.pack(MAGIC, version, NLL, nll.size) + nll.tobytes() + tokens.tobytes() + tail


def with_groups(blob: bytes, groups: np.ndarray | None) -> bytes:
    """A version-1 blob with a group id per example appended (version 2); unchanged when
    `groups` is None."""
    if groups is None:
        return blob
    magic, _, kind, n = _HEADER.unpack_from(blob)
    version, tail = _groups_tail(groups, n)
    return _HEADER.pack(magic, version, kind, n) + blob[_HEADER.size :] + tail


@dataclass(frozen=True)
class Outcomes:
    kind: str  # "correct" or "nll"
    values: np.ndarray  # float64 per example; mean = accuracy, or mean token NLL
    tokens: np.ndarray | None = None  # causal LM: scored tokens per sequence
    groups: np.ndarray | None = None  # group id per example (document, scene), where known

    def __len__(self) -> int:
        return int(self.values.size)


def unpack(blob: bytes) -> Outcomes:
    magic, version, kind, n = _HEADER.unpack_from(blob)
    if magic != MAGIC or version not in (VERSION, GROUPED):
        raise ValueError("not a prunebench outcomes blob (or a newer version)")
    body = memoryview(blob)[_HEADER.size :]
    if kind == CORRECT:
        size = (n + 7) // 8
        bits = np.unpackbits(np.frombuffer(body, dtype=np.uint8, count=size), count=n)
        return Outcomes("correct", bits.astype(np.float64), None, _groups(body, size, n, version))
    if kind == NLL:
        nll = np.frombuffer(body, dtype="<f4", count=n).astype(np.float64)
        tokens = np.frombuffer(body, dtype="<i4", count=n, offset=4 * n).astype(np.int64)
        per_token = nll / max(float(tokens.mean()), 1e-12)
        return Outcomes("nll", per_token, tokens, _groups(body, 8 * n, n, version))
    raise ValueError(f"unknown outcomes kind {kind!r}")


def _groups(body: memoryview, offset: int, n: int, version: int) -> np.ndarray | None:
    if version != GROUPED:
        return None
    return np.frombuffer(body, dtype="<i4", count=n, offset=offset).astype(np.int64)
