"""Strided perplexity (the Hugging Face guide's protocol, token-weighted) against a hand
computation: every token after the first scored once, with its window's tokens before it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from prunebench.errors import PrunebenchError
from prunebench.evaluation.perplexity import strided_perplexity, text_ids
from prunebench.store.example_outcomes import pack_nll, unpack


def tiny_llama():
    config = AutoConfig.for_model(
        "llama", vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def hand_nll(model, ids: list[int], context: int, stride: int) -> tuple[float, int, dict]:
    """Token t (t >= 1) is scored in the first window [b, b + context) that holds it with
    b < t; its log-probability given ids[b:t] comes from one forward of ids[b:t] alone.
    Also each scoring window's start -> [NLL sum, tokens] (the per-example outcomes)."""
    owner = {}
    begin = 0
    while True:
        end = min(begin + context, len(ids))
        for t in range(max(begin + 1, 1), end):
            owner.setdefault(t, begin)
        if end == len(ids):
            break
        begin += stride
    total, windows = 0.0, {}
    for t, b in owner.items():
        with torch.no_grad():
            logits = model(torch.tensor([ids[b:t]])).logits[0, -1].double()
        nll = -float(torch.log_softmax(logits, -1)[ids[t]])
        total += nll
        window = windows.setdefault(b, [0.0, 0])
        window[0] += nll
        window[1] += 1
    return total, len(owner), windows


@pytest.mark.parametrize(("context", "stride"), [(8, 8), (8, 3), (8, 1), (64, 5)])
def test_strided_perplexity_equals_a_hand_computation(context, stride):
    model = tiny_llama()
    ids = torch.randint(3, 128, (30,))
    got = strided_perplexity(model, ids, context, stride)
    nll, tokens, windows = hand_nll(model, ids.tolist(), context, stride)
    assert got.tokens == tokens
    # with stride < context every token after the first is scored once; with stride ==
    # context a window's first token has nothing before it and is not scored (as in the guide)
    assert tokens == (29 if stride < context else 29 - (29 // context))
    assert got.nll == pytest.approx(nll, rel=1e-5)
    assert got.ppl == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    by_start = [windows[b] for b in sorted(windows)]  # the outcomes: window by window
    assert list(got.window_tokens) == [n for _, n in by_start]
    assert list(got.window_nll) == pytest.approx([x for x, _ in by_start], rel=1e-5)
    outcomes = unpack(pack_nll(np.array(got.window_nll), np.array(got.window_tokens)))
    assert outcomes.values.mean() == pytest.approx(nll / tokens, rel=1e-5)  # log perplexity


def test_the_text_comes_from_a_local_file_and_bad_input_is_one_line(tmp_path):
    from prunebench.data.synthetic_stories import build_tokenizer, generate_stories

    stories = generate_stories(20)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(stories))
    (tmp_path / "test.txt").write_text(" ".join(stories))
    ids = text_ids(tmp_path / "test.txt", tokenizer)
    assert len(ids) > 100
    with pytest.raises(PrunebenchError, match="does not exist"):
        text_ids(tmp_path / "missing.txt", tokenizer)
    with pytest.raises(PrunebenchError, match="stride <= context"):
        strided_perplexity(tiny_llama(), ids, 8, 9)


def test_a_context_longer_than_the_model_takes_is_one_line(tmp_path):
    from prunebench.config.evaluation import EvalConfig
    from prunebench.evaluation import suite

    (tmp_path / "t.txt").write_text("a b c")
    cfg = EvalConfig(perplexity={"file": tmp_path / "t.txt", "context": 128})
    (evaluation,) = suite.evaluations(cfg, seq_len=16)
    assert evaluation.setting["stride"] == 64  # half the context unless given
    with pytest.raises(PrunebenchError, match="context 128 is longer than the model's 64"):
        suite.run(evaluation, tiny_llama(), None, "cpu")
