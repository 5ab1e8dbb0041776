"""Per-example test outcomes as a compact blob: the raw material of paired comparisons.

A step's test metric is a mean over the test split; comparing two regimes honestly needs the
per-example results behind it (same examples, same order, for runs that share the data config),
so that test-set noise can be measured. Stored per evaluated step in `steps.test_outcomes`:

    classification: b"PBO" + version + b"C" + uint32 n + numpy.packbits(top-1 correct)
                    (10,000 test images -> 1,258 bytes)
    causal LM:      b"PBO" + version + b"N" + uint32 n + float32 NLL sum per sequence
                    + int32 scored tokens per sequence (8 bytes per sequence)

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
CORRECT, NLL = b"C", b"N"
_HEADER = struct.Struct("<3sB1sI")


def pack_correct(correct: np.ndarray) -> bytes:
    """Top-1 correct (bool per example, in test-split order) as packed bits."""
    bits = np.asarray(correct, dtype=bool).ravel()
    return _HEADER.pack(MAGIC, VERSION, CORRECT, bits.size) + np.packbits(bits).tobytes()


def pack_nll(nll: np.ndarray, tokens: np.ndarray) -> bytes:
    """Per-sequence NLL sums (nats) and scored-token counts."""
    nll = np.asarray(nll, dtype="<f4").ravel()
    tokens = np.asarray(tokens, dtype="<i4").ravel()
    if nll.size != tokens.size:
        raise ValueError("one token count per sequence")
    return _HEADER.pack(MAGIC, VERSION, NLL, nll.size) + nll.tobytes() + tokens.tobytes()


@dataclass(frozen=True)
class Outcomes:
    kind: str  # "correct" or "nll"
    values: np.ndarray  # float64 per example; mean = accuracy, or mean token NLL
    tokens: np.ndarray | None = None  # causal LM: scored tokens per sequence

    def __len__(self) -> int:
        return int(self.values.size)


def unpack(blob: bytes) -> Outcomes:
    magic, version, kind, n = _HEADER.unpack_from(blob)
    if magic != MAGIC or version != VERSION:
        raise ValueError("not a prunebench outcomes blob (or a newer version)")
    body = memoryview(blob)[_HEADER.size :]
    if kind == CORRECT:
        bits = np.unpackbits(np.frombuffer(body, dtype=np.uint8), count=n)
        return Outcomes("correct", bits.astype(np.float64))
    if kind == NLL:
        nll = np.frombuffer(body, dtype="<f4", count=n).astype(np.float64)
        tokens = np.frombuffer(body, dtype="<i4", count=n, offset=4 * n).astype(np.int64)
        per_token = nll / max(float(tokens.mean()), 1e-12)
        return Outcomes("nll", per_token, tokens)
    raise ValueError(f"unknown outcomes kind {kind!r}")
