"""The registered models' Torch-Pruning hooks, driven through StructuredPruner as production
builds it (`make_pruner`): heads pruned whole and counted from the ORIGINAL heads over
iterative steps, attributes and configs updated, GPT-Neo's residual width kept, EfficientNet
widths rounded, and the structure rebuilt from `state()` on a fresh dense model."""

from __future__ import annotations

import json

import pytest
import torch
import torch_pruning as tp

from prunebench.config.loading import load_run_config
from prunebench.data import DataInfo
from prunebench.measure import repeat_batch
from prunebench.models import MODELS
from prunebench.pruning.factory import make_pruner

TOKENS = DataInfo(task="causal_lm", vocab_size=40, seq_len=12)
IMAGES = DataInfo(task="classification", num_classes=10, in_channels=3, image_size=32)
DIGITS = DataInfo(task="classification", num_classes=10, in_channels=1, image_size=8)
VIT = "vit_small_patch16_224"


def prune_cfg(scope: str = "layerwise"):
    overrides = ["prune.structure=structured", f"prune.scope={scope}", "prune.latency=false"]
    return load_run_config(None, overrides).prune


def build(name: str, info: DataInfo, **options):
    torch.manual_seed(0)
    return MODELS.get(name).build(info, **options)


def vit(depth=2, heads=8, head_dim=8, info=IMAGES, patch_size=8):
    return build(
        VIT, info, patch_size=patch_size, depth=depth, embed_dim=head_dim * heads, num_heads=heads
    )


def gpt_neo():
    return build("gpt_neo", TOKENS)  # size "tiny": 2 layers of 4 heads, head_dim 16


def logits(model, x):
    out = model(x)
    return out.logits if hasattr(out, "logits") else out


def attentions(model) -> list[tuple[str, torch.nn.Module, torch.nn.Linear]]:
    """(name of the projection the pruner counts heads on, attention module, query weights)."""
    if hasattr(model, "blocks"):
        return [(f"blocks.{i}.attn.qkv", b.attn, b.attn.qkv) for i, b in enumerate(model.blocks)]
    return [
        (f"transformer.h.{i}.attn.attention.q_proj", b.attn.attention, b.attn.attention.q_proj)
        for i, b in enumerate(model.transformer.h)
    ]


def head_counts(model) -> list[int]:
    return [attn.num_heads for _, attn, _ in attentions(model)]


def assert_restores(name, model, pruner, fresh, info, scope):
    """`state()` (as JSON, as stored) replayed on a freshly built dense model plus the pruned
    weights computes exactly what the pruned model computes."""
    restored = make_pruner(prune_cfg(scope), fresh, MODELS.get(name), info)
    restored.restore(fresh, {}, json.loads(json.dumps(pruner.state()[1])))
    fresh.load_state_dict(model.state_dict())
    model.eval(), fresh.eval()
    assert head_counts(fresh) == head_counts(model)
    x = MODELS.get(name).example_inputs(info)
    with torch.no_grad():
        assert torch.equal(logits(model, x), logits(fresh, x))
    if name == "gpt_neo":
        assert fresh.config.prunebench_structure == model.config.prunebench_structure


CASES = {
    # case: (build the dense model, info, scope, original heads, targets, heads after each)
    "vit-8-heads": (lambda: vit(), IMAGES, "global", 8, (0.25, 0.5, 0.75), [6, 4, 2]),
    "vit-3-heads": (lambda: vit(heads=3), IMAGES, "layerwise", 3, (0.25, 0.5), [2, 1]),
    "vit-digits": (
        lambda: vit(heads=4, head_dim=4, info=DIGITS, patch_size=4),
        DIGITS,
        "layerwise",
        4,
        (0.5, 0.75),
        [2, 1],
    ),
    "gpt_neo": (gpt_neo, TOKENS, "layerwise", 4, (0.25, 0.5, 0.75), [3, 2, 1]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_heads_count_from_the_original_over_iterative_steps(case):
    """Each layer keeps its ORIGINAL heads minus the pruned count of the cumulative target, in
    either scope (halves round up in the pruned count: 3 heads at 0.5 keep 1); each step's
    model trains and gives outputs of the dense shape; state() rebuilds it exactly."""
    make, info, scope, heads, targets, expected = CASES[case]
    name = "gpt_neo" if case == "gpt_neo" else VIT
    model = make()
    spec = MODELS.get(name)
    x = repeat_batch(spec.example_inputs(info), 2)
    dense_shape = logits(model, x).shape
    head_dim = {p: p.out_features // attn.num_heads for _, attn, p in attentions(model)}
    pruner = make_pruner(prune_cfg(scope), model, spec, info)
    if name == VIT:  # GPT-Neo's q, k and v projections each carry the heads
        assert pruner.heads0 == {n: heads for n, _, _ in attentions(model)}
    assert set(pruner.heads0.values()) == {heads}
    seen = []
    for target in targets:
        pruner.prune_to(model, target)
        seen.append(head_counts(model))
        for _, attn, proj in attentions(model):  # whole heads go, each keeps its size
            assert proj.out_features == proj.out_features // attn.num_heads * attn.num_heads
            assert proj.out_features // attn.num_heads == head_dim[proj]
        model.train()
        out = logits(model, x)
        assert out.shape == dense_shape
        out.float().pow(2).mean().backward()
        model.zero_grad()
    assert seen == [[n] * len(seen[0]) for n in expected]
    assert_restores(name, model, pruner, make(), info, scope)


def test_vit_heads_do_not_compound_and_keep_their_size():
    model = vit()
    spec = MODELS.get(VIT)
    pruner = make_pruner(prune_cfg("layerwise"), model, spec, IMAGES)
    assert pruner.heads0 == {"blocks.0.attn.qkv": 8, "blocks.1.attn.qkv": 8}
    seen = []
    for target in (0.125, 0.25, 0.375, 0.5):
        pruner.prune_to(model, target)
        seen.append([b.attn.num_heads for b in model.blocks])
    assert seen == [[7, 7], [6, 6], [5, 5], [4, 4]]
    for block in model.blocks:
        attn = block.attn
        assert attn.head_dim == 8  # whole heads removed, head size kept
        assert attn.attn_dim == attn.num_heads * attn.head_dim
        assert attn.qkv.out_features == 3 * attn.attn_dim
        assert attn.proj.in_features == attn.attn_dim
    assert model.embed_dim == model.patch_embed.proj.out_channels == 32  # half of 64
    assert model.head.out_features == 10
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()


@pytest.mark.filterwarnings("ignore:Unwrapped parameters")  # this test bypasses the hooks
def test_plain_cumulative_head_ratio_would_compound():
    """The failure StructuredPruner prevents: the cumulative target passed as Torch-Pruning's
    head ratio on each step's model leaves 1 head of 8 at 0.5 in 4 steps."""
    model = vit(depth=1)
    attn = model.blocks[0].attn
    previous = 0.0
    for target in (0.125, 0.25, 0.375, 0.5):
        model.eval()
        pruner = tp.pruner.MetaPruner(
            model,
            torch.randn(1, 3, 32, 32),
            importance=tp.importance.MagnitudeImportance(p=2),
            pruning_ratio=1.0 - (1.0 - target) / (1.0 - previous),
            ignored_layers=[model.head],
            num_heads={attn.qkv: attn.num_heads},
            prune_num_heads=True,
            prune_head_dims=False,
            head_pruning_ratio=target,
        )
        pruner.step()
        MODELS.get(VIT).structured.after_step(model, pruner)
        previous = target
    assert attn.num_heads == 1


def test_gpt_neo_structured_prunes_heads_and_mlp_but_not_the_residual():
    model = gpt_neo()
    dense = gpt_neo()
    dense.load_state_dict(model.state_dict())
    pruner = make_pruner(prune_cfg("layerwise"), model, MODELS.get("gpt_neo"), TOKENS)
    pruner.prune_to(model, 0.5)

    assert model.transformer.wte.weight.shape == (40, 64)  # residual width kept
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied
    for block in model.transformer.h:
        attn = block.attn.attention
        assert attn.num_heads == 2 and attn.head_dim == 16
        assert attn.q_proj.out_features == attn.embed_dim == 32
        assert block.mlp.c_fc.out_features == 128
    assert model.config.num_heads == 2 and model.config.intermediate_size == 128
    assert model.config.hidden_size == 64
    assert model.config.prunebench_structure == {
        "num_heads": [2, 2],
        "intermediate_size": [128, 128],
    }

    # Independent check: the pruned model computes what the dense model computes with the
    # removed heads' and channels' contributions zeroed.
    with torch.no_grad():
        for small, big in zip(model.transformer.h, dense.transformer.h, strict=True):
            a, b = small.attn.attention, big.attn.attention
            hd = a.head_dim
            kept_heads = [
                next(
                    j
                    for j in range(b.num_heads)
                    if torch.equal(
                        a.q_proj.weight[h * hd : (h + 1) * hd],
                        b.q_proj.weight[j * hd : (j + 1) * hd],
                    )
                )
                for h in range(a.num_heads)
            ]
            for j in set(range(b.num_heads)) - set(kept_heads):
                b.out_proj.weight[:, j * hd : (j + 1) * hd] = 0
            kept = [
                next(
                    j
                    for j in range(b.q_proj.in_features * 4)
                    if torch.equal(small.mlp.c_fc.weight[i], big.mlp.c_fc.weight[j])
                )
                for i in range(small.mlp.c_fc.out_features)
            ]
            dropped = sorted(set(range(big.mlp.c_fc.out_features)) - set(kept))
            big.mlp.c_proj.weight[:, dropped] = 0
    ids = torch.randint(0, 40, (2, 12))
    model.eval(), dense.eval()
    torch.testing.assert_close(model(ids).logits, dense(ids).logits, atol=1e-5, rtol=1e-5)

    out = model.generate(ids[:1, :4], max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert out.shape == (1, 10)
    assert torch.equal(out[0, :4], ids[0, :4])


def test_gpt_neo_iterative_heads_from_original():
    model = gpt_neo()
    pruner = make_pruner(prune_cfg("layerwise"), model, MODELS.get("gpt_neo"), TOKENS)
    heads = []
    for target in (0.25, 0.5, 0.75):
        pruner.prune_to(model, target)
        heads.append(model.config.num_heads)
    assert heads == [3, 2, 1]  # 4 minus the pruned count of the original 4; never 0 heads
    model.train()
    loss = model(input_ids=torch.randint(0, 40, (2, 12)), labels=torch.randint(0, 40, (2, 12))).loss
    assert torch.isfinite(loss)
    loss.backward()


def test_efficientnet_widths_stay_multiples_of_eight():
    spec = MODELS.get("efficientnet_v2_s")
    model = spec.build(IMAGES, stages=2)
    pruner = make_pruner(prune_cfg("layerwise"), model, spec, IMAGES)
    pruner.prune_to(model, 0.5)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.out_channels % 8 == 0 for c in convs)
    assert sum(c.out_channels for c in convs) < 0.6 * sum(
        c.out_channels
        for c in spec.build(IMAGES, stages=2).modules()
        if isinstance(c, torch.nn.Conv2d)
    )
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
