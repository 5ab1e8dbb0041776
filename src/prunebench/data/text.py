"""Token streams for causal language modelling, packed into fixed-length sequences in memory.

Stories are tokenized, each followed by the end-of-text token, concatenated and cut into
sequences of `seq_len + 1` tokens that overlap by one token: inputs are the first `seq_len`,
targets the last `seq_len` (the next token at each position). Every token after the first is
thus predicted exactly once per split, so a split's perplexity covers all its tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from prunebench.data.base import DataBundle
from prunebench.data.info import DataInfo
from prunebench.data.memory import TensorLoader
from prunebench.errors import PrunebenchError

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

Encode = Callable[[list[str]], list[list[int]]]
ENCODE_CHUNK = 1000  # stories per tokenizer call (fast tokenizers batch internally)


def encode_stories(stories: Sequence[str], encode: Encode, eos_id: int) -> torch.Tensor:
    """One flat int64 stream: story tokens, end-of-text, story tokens, end-of-text, ..."""
    return encode_documents(stories, encode, eos_id)[0]


def encode_documents(
    stories: Sequence[str], encode: Encode, eos_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(stream as encode_stories, the index of the story each token came from)."""
    stream: list[int] = []
    story: list[int] = []
    for start in range(0, len(stories), ENCODE_CHUNK):
        for offset, ids in enumerate(encode(list(stories[start : start + ENCODE_CHUNK]))):
            stream.extend(ids)
            stream.append(eos_id)
            story.extend([start + offset] * (len(ids) + 1))
    return torch.tensor(stream, dtype=torch.long), torch.tensor(story, dtype=torch.long)


def sequence_documents(story: torch.Tensor, seq_len: int, n: int) -> torch.Tensor:
    """The document of each of `n` packed sequences: the story of its first input token
    (sequences cut from one story share its topic and style: a cluster of test examples)."""
    return story[: n * seq_len : seq_len].clone()


def pack(stream: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each (n, seq_len), from windows of seq_len + 1 overlapping by one."""
    n = (len(stream) - 1) // seq_len
    if n == 0:
        raise PrunebenchError(
            f"the text has {len(stream)} tokens, fewer than data.seq_len + 1 = {seq_len + 1}; "
            "lower data.seq_len or use more text"
        )
    used = stream[: n * seq_len + 1]
    inputs = used[:-1].view(n, seq_len)
    targets = used[1:].view(n, seq_len)
    return inputs.contiguous(), targets.contiguous()


def tokens_step(cfg: DataConfig) -> dict[str, object]:
    """DataInfo.preprocessing of a text dataset: the tokenizer that turns text into ids."""
    path = cfg.tokenizer
    return {"kind": "tokens", "tokenizer": None if path is None else str(path.resolve())}


def lm_bundle(
    splits: dict[str, Sequence[str]],
    encode: Encode,
    eos_id: int,
    vocab_size: int,
    cfg: DataConfig,
    device: torch.device,
    tokenizer: Any = None,
) -> DataBundle:
    """A DataBundle of packed (input_ids, target_ids) batches kept on the device; `tokenizer`
    (a transformers tokenizer) is kept with it for the evaluations of `eval:`."""
    packed = {}
    documents = None
    for name in ("train", "val", "test"):
        stream, story = encode_documents(splits[name], encode, eos_id)
        x, y = pack(stream, cfg.seq_len)
        packed[name] = (x.to(device), y.to(device))
        if name == "test":
            documents = sequence_documents(story, cfg.seq_len, len(x))

    def loader(name: str, batch_size: int, shuffle: bool) -> TensorLoader:
        x, y = packed[name]
        return TensorLoader(x, y, batch_size, shuffle=shuffle)

    return DataBundle(
        info=DataInfo(
            task="causal_lm",
            vocab_size=vocab_size,
            seq_len=cfg.seq_len,
            preprocessing=tokens_step(cfg),
        ),
        train=loader("train", cfg.batch_size, True),
        val=loader("val", cfg.eval_batch_size, False),
        test=loader("test", cfg.eval_batch_size, False),
        calibration=loader("train", cfg.batch_size, True),
        sizes={name: len(packed[name][0]) for name in packed},
        test_groups=documents,
        tokenizer=tokenizer,
    )


def split_stories(
    stories: Sequence[str], fractions: tuple[float, float], seed: int
) -> dict[str, list[str]]:
    """Seeded shuffle, then (val, test) shares off the front; the rest is train."""
    order = torch.randperm(len(stories), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(fractions[0] * len(stories)))
    n_test = max(1, round(fractions[1] * len(stories)))
    if n_val + n_test >= len(stories):
        raise PrunebenchError(f"{len(stories)} stories are too few to split into train/val/test")
    pick = [stories[i] for i in order]
    return {
        "val": pick[:n_val],
        "test": pick[n_val : n_val + n_test],
        "train": pick[n_val + n_test :],
    }
