"""An offline stand-in for TinyStories: short stories from a small grammar, and a word tokenizer.

The corpus is generated deterministically from `data.options.seed` (same stories on every
machine), so a tiny GPT-Neo can be trained, pruned and scored by perplexity with no download.
The stories have structure a small model can learn (a character introduced by name is referred
to by name and pronoun later; objects reappear), so pruning visibly costs perplexity.
The tokenizer is a word-level `tokenizers.Tokenizer` whose vocabulary is built from the corpus
(ordered by frequency, then alphabetically: deterministic).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING, Any

import torch

from prunebench.data.base import DataBundle
from prunebench.data.info import DatasetSpec
from prunebench.data.options import OPTION_DEFAULTS, dataset_options
from prunebench.data.text import lm_bundle, split_stories

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from prunebench.config.schema import DataConfig

EOS = "<|endoftext|>"
UNK = "[UNK]"
TEST_FRACTION = 0.1
DEFAULTS = OPTION_DEFAULTS["synthetic_stories"]

GIRLS = ["Lily", "Mia", "Anna", "Sue", "Emma", "Zoe", "Lucy", "Sara"]
BOYS = ["Tom", "Ben", "Sam", "Max", "Leo", "Tim", "Jack", "Bob"]
ANIMALS = ["dog", "cat", "bird", "frog", "bunny", "duck", "fox", "bear"]
OBJECTS = ["ball", "kite", "box", "hat", "cake", "book", "toy", "drum", "boat", "cup"]
COLORS = ["red", "blue", "green", "yellow", "pink", "big", "little", "shiny"]
PLACES = ["park", "garden", "house", "forest", "river", "yard", "beach", "farm"]
HIDING = ["a tree", "the bed", "a rock", "the table", "a bush", "the sand"]
FEELINGS = ["happy", "glad", "proud", "excited"]
SAD = ["sad", "upset", "worried"]


def _person(rng: random.Random) -> tuple[str, str, str]:
    """(name, subject pronoun, object pronoun)."""
    if rng.random() < 0.5:
        return rng.choice(GIRLS), "She", "her"
    return rng.choice(BOYS), "He", "him"


def story(rng: random.Random) -> str:
    name, he, him = _person(rng)
    friend, _, _ = _person(rng)
    while friend == name:
        friend, _, _ = _person(rng)
    animal, obj, color, place = (
        rng.choice(ANIMALS),
        rng.choice(OBJECTS),
        rng.choice(COLORS),
        rng.choice(PLACES),
    )
    opening = rng.choice(
        [
            f"Once upon a time, there was a little {animal} named {name}.",
            f"One day, a {animal} named {name} went to the {place}.",
            f"There was a {animal} called {name} who lived near the {place}.",
        ]
    )
    lines = [
        opening,
        f"{name} had a {color} {obj}.",
        f"{he} liked to play with the {obj} in the {place}.",
    ]
    if rng.random() < 0.6:
        hiding = rng.choice(HIDING)
        lines += [
            f"One day, {name} could not find the {obj}.",
            f"{he} was very {rng.choice(SAD)}.",
            f"{friend} came to help {him}.",
            f"They looked and looked, and they found the {obj} under {hiding}.",
            f'{name} said, "Thank you, {friend}!"',
        ]
    else:
        lines += [
            f"{friend} saw the {obj} and wanted to play too.",
            f'{name} said, "Let us play together!"',
            f"They played with the {color} {obj} all day.",
        ]
    lines.append(f"{name} was {rng.choice(FEELINGS)}, and {friend} was {rng.choice(FEELINGS)} too.")
    if rng.random() < 0.5:
        lines.append("The end.")
    return " ".join(lines)


def generate_stories(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [story(rng) for _ in range(n)]


def build_tokenizer(stories: list[str]) -> Tokenizer:
    """Word-level tokenizer over the corpus' words and punctuation, plus end-of-text and unknown."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    pre = pre_tokenizers.Whitespace()
    counts: Counter[str] = Counter()
    for text in stories:
        counts.update(piece for piece, _ in pre.pre_tokenize_str(text))
    words = sorted(counts, key=lambda w: (-counts[w], w))
    vocab = {EOS: 0, UNK: 1, **{w: i + 2 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre
    tokenizer.decoder = decoders.WordPiece()  # joins words with spaces
    tokenizer.add_special_tokens([EOS])
    return tokenizer


def build_synthetic_stories(cfg: DataConfig, device: torch.device) -> DataBundle:
    opts = dataset_options("synthetic_stories", cfg.options, DEFAULTS)
    stories = generate_stories(int(opts["stories"]), int(opts["seed"]))
    tokenizer = build_tokenizer(stories)
    splits = split_stories(stories, (cfg.val_fraction, TEST_FRACTION), cfg.split_seed)

    def encode(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

    return lm_bundle(
        splits,
        encode,
        tokenizer.token_to_id(EOS),
        tokenizer.get_vocab_size(),
        cfg,
        device,
        transformers_tokenizer(tokenizer),
    )


def transformers_tokenizer(tokenizer: Tokenizer) -> Any:
    """The word tokenizer as a transformers tokenizer (what the evaluations of `eval:` and
    lm-eval call), with its end-of-text and unknown tokens named."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, unk_token=UNK)


SPEC = DatasetSpec(
    build=build_synthetic_stories,
    task="causal_lm",
    description="generated short stories + word tokenizer (offline TinyStories stand-in)",
)
