"""The per-model Torch-Pruning hooks: heads pruned whole and not compounded across steps,
attributes and configs updated, GPT-Neo's residual width kept, EfficientNet widths rounded."""

from __future__ import annotations

import math

import pytest
import torch
import torch_pruning as tp

from prunebench.data import DataInfo
from prunebench.models import MODELS
from prunebench.models.heads import heads_to_keep, removal_ratio

TOKENS = DataInfo(task="causal_lm", vocab_size=40, seq_len=12)
IMAGES = DataInfo(task="classification", num_classes=10, in_channels=3, image_size=32)


def prune_step(name, model, info, target, previous=0.0, ignored=()):
    """One step to cumulative `target` with a MetaPruner built for this step (the channel ratio
    relative to the current model; heads through the hooks, relative to the original)."""
    spec = MODELS.get(name)
    kwargs = spec.structured.pruner_kwargs(model, target)
    ratio = 1.0 - (1.0 - target) / (1.0 - previous)
    model.eval()
    pruner = tp.pruner.MetaPruner(
        model,
        spec.example_inputs(info),
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=ratio,
        ignored_layers=[*ignored, *kwargs.pop("ignored_layers", [])],
        **kwargs,
    )
    pruner.step()
    spec.structured.after_step(model, pruner)
    return model


def test_removal_ratio_removes_exactly():
    for current in range(1, 65):
        for remove in range(current + 1):
            r = removal_ratio(current, remove)
            assert math.ceil(r * current) == remove  # Torch-Pruning's local head count
            assert current - int(current * (1 - r)) == remove  # its global head count


def test_heads_to_keep_counts_from_the_original():
    assert [heads_to_keep(8, t) for t in (0.125, 0.25, 0.375, 0.5)] == [7, 6, 5, 4]
    assert heads_to_keep(4, 0.99) == 1  # never zero heads
    assert heads_to_keep(6, 0.5) == 3


def vit(depth=2, heads=8):
    torch.manual_seed(0)
    spec = MODELS.get("vit_small_patch16_224")
    return spec.build(IMAGES, patch_size=8, depth=depth, embed_dim=8 * heads, num_heads=heads)


def test_vit_heads_do_not_compound_over_iterative_steps():
    model = vit()
    previous, seen = 0.0, []
    for target in (0.125, 0.25, 0.375, 0.5):
        prune_step("vit_small_patch16_224", model, IMAGES, target, previous, [model.head])
        previous = target
        seen.append([b.attn.num_heads for b in model.blocks])
    assert seen == [[7, 7], [6, 6], [5, 5], [4, 4]]
    for block in model.blocks:
        attn = block.attn
        assert attn.head_dim == 8  # whole heads removed, head size kept
        assert attn.attn_dim == attn.num_heads * attn.head_dim
        assert attn.qkv.out_features == 3 * attn.attn_dim
        assert attn.proj.in_features == attn.attn_dim
    assert model.embed_dim == model.patch_embed.proj.out_channels == 32  # half of 64
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()


@pytest.mark.filterwarnings("ignore:Unwrapped parameters")  # this test bypasses the hooks
def test_plain_cumulative_head_ratio_would_compound():
    """The failure the hooks prevent: the cumulative target passed as Torch-Pruning's head ratio
    on each step's model leaves 1 head of 8 at 0.5 in 4 steps."""
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
        MODELS.get("vit_small_patch16_224").structured.after_step(model, pruner)
        previous = target
    assert attn.num_heads == 1


def gpt_neo():
    torch.manual_seed(0)
    return MODELS.get("gpt_neo").build(TOKENS)


def test_gpt_neo_structured_prunes_heads_and_mlp_but_not_the_residual():
    model = gpt_neo()
    dense = gpt_neo()
    dense.load_state_dict(model.state_dict())
    prune_step("gpt_neo", model, TOKENS, 0.5)

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
    previous, heads = 0.0, []
    for target in (0.25, 0.5, 0.75):
        prune_step("gpt_neo", model, TOKENS, target, previous)
        previous = target
        heads.append(model.config.num_heads)
    assert heads == [3, 2, 1]  # round(4 * (1 - target)); compounding would reach 0 heads
    loss = model(input_ids=torch.randint(0, 40, (2, 12)), labels=torch.randint(0, 40, (2, 12))).loss
    assert torch.isfinite(loss)
    loss.backward()


def test_efficientnet_widths_stay_multiples_of_eight():
    spec = MODELS.get("efficientnet_v2_s")
    model = spec.build(IMAGES, stages=2)
    kwargs = spec.structured.pruner_kwargs(model, 0.5)
    model.eval()
    pruner = tp.pruner.MetaPruner(
        model,
        torch.randn(1, 3, 32, 32),
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[model.classifier[1]],
        **kwargs,
    )
    pruner.step()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.out_channels % 8 == 0 for c in convs)
    assert sum(c.out_channels for c in convs) < 0.6 * sum(
        c.out_channels
        for c in spec.build(IMAGES, stages=2).modules()
        if isinstance(c, torch.nn.Conv2d)
    )


@pytest.mark.parametrize("name", ["gpt_neo", "vit_small_patch16_224"])
def test_pruned_model_rebuilds_from_its_pruning_history(name):
    """The export path (DESIGN §3): a fresh model + Torch-Pruning's history + after_step(model,
    None) + the pruned weights computes exactly what the pruned model computes."""
    info = TOKENS if name == "gpt_neo" else IMAGES
    fresh = gpt_neo if name == "gpt_neo" else vit
    model = fresh()
    ignored = [] if name == "gpt_neo" else [model.head]
    spec = MODELS.get(name)
    kwargs = spec.structured.pruner_kwargs(model, 0.5)
    model.eval()
    pruner = tp.pruner.MetaPruner(
        model,
        spec.example_inputs(info),
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[*ignored, *kwargs.pop("ignored_layers", [])],
        **kwargs,
    )
    pruner.step()
    spec.structured.after_step(model, pruner)
    history = pruner.pruning_history()

    rebuilt = fresh()
    graph_kwargs = {
        k: v
        for k, v in spec.structured.pruner_kwargs(rebuilt).items()
        if k in ("forward_fn", "output_transform", "unwrapped_parameters")
    }
    graph = tp.DependencyGraph().build_dependency(
        rebuilt, example_inputs=spec.example_inputs(info), **graph_kwargs
    )
    graph.load_pruning_history(history)
    spec.structured.after_step(rebuilt, None)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    x = spec.example_inputs(info)
    out_a, out_b = model(x), rebuilt(x)
    if name == "gpt_neo":
        out_a, out_b = out_a.logits, out_b.logits
        assert rebuilt.config.prunebench_structure == model.config.prunebench_structure
    torch.testing.assert_close(out_a, out_b)
