"""Strided perplexity over a raw text file: the protocol papers report WikiText-2 with.

The file is tokenized as one stream. Windows of `context` tokens start every `stride` tokens
(the Hugging Face perplexity guide); each window scores only the tokens no earlier window
scored, so with stride < context every token after the first is scored exactly once, with at
least `context - stride` tokens before it (all of them near the start); with stride == context
a window's first token has nothing before it and is not scored, as in the guide. Perplexity is token-weighted:
exp(sum of the scored tokens' negative log-likelihoods / their number). (The guide's code
weights each window's mean by one token fewer than it scores after the first window; this
counts them exactly.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from prunebench.errors import PrunebenchError
from prunebench.measure import eval_mode
from prunebench.tasks import logits_of


@dataclass(frozen=True)
class Perplexity:
    ppl: float
    nll: float  # sum over scored tokens
    tokens: int  # scored tokens
    context: int
    stride: int
    window_nll: tuple[float, ...] = ()  # per scoring window: its NLL sum ...
    window_tokens: tuple[int, ...] = ()  # ... and its scored tokens (per-example outcomes)


def text_ids(path: Path | str, tokenizer: Any) -> torch.Tensor:
    """The token ids of a UTF-8 text file as one stream (no special tokens added)."""
    path = Path(path)
    if not path.is_file():
        raise PrunebenchError(f"perplexity text '{path}' does not exist; give a local text file")
    text = path.read_text(encoding="utf-8")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < 2:
        raise PrunebenchError(f"perplexity text '{path}' holds fewer than 2 tokens")
    return torch.as_tensor(ids, dtype=torch.long)


@torch.no_grad()
def strided_perplexity(
    model: nn.Module, ids: torch.Tensor, context: int, stride: int, device: Any = "cpu"
) -> Perplexity:
    """Perplexity of `model` (a causal LM: ids (1, T) -> logits (1, T, V)) on the stream `ids`."""
    if not 0 < stride <= context:
        raise PrunebenchError(f"perplexity: need 0 < stride <= context, got {stride}, {context}")
    total, count, scored_to = 0.0, 0, 1  # positions < scored_to are scored (0 never is)
    window_nll: list[float] = []
    window_tokens: list[int] = []
    with eval_mode(model):
        for begin in range(0, len(ids), stride):
            end = min(begin + context, len(ids))
            window = ids[begin:end].unsqueeze(0).to(device)
            logits = logits_of(model(window))[0].float()
            first = max(scored_to, begin + 1)  # the first position this window scores
            if first < end:
                predicted = logits[first - 1 - begin : end - 1 - begin]
                targets = window[0, first - begin : end - begin]
                nll = float(F.cross_entropy(predicted, targets, reduction="sum"))
                total += nll
                count += end - first
                window_nll.append(nll)
                window_tokens.append(end - first)
                scored_to = end
            if end == len(ids):
                break
    return Perplexity(
        math.exp(total / count),
        total,
        count,
        context,
        stride,
        tuple(window_nll),
        tuple(window_tokens),
    )
