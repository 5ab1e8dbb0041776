"""Hugging Face models from local configs (`model.name=hf`): tiny random Llama, Qwen2, Mistral
and Gemma (grouped-query attention), GPT-2 (fused Conv1D qkv), GPT-NeoX (per-head fused qkv),
Phi and OPT, pruned structurally over 3 iterative steps: whole heads counted from the ORIGINAL
counts, MLP channels; loss, backward, generate and a rebuild from the stored state still work."""

from __future__ import annotations

import json

import pytest
import torch

from prunebench.config import schedules
from prunebench.config.schema import ModelConfig, PruneConfig
from prunebench.data.info import DataInfo
from prunebench.engine.pruned_state import pack, restore
from prunebench.export.pruned import export_model, load_pruned
from prunebench.models.build import build_model, model_spec
from prunebench.pruning.factory import make_pruner
from prunebench.pruning.heads import counts
from prunebench.pruning.targets import head_keep
from tiny_lm_configs import COMMON, DECODER, FAMILIES, INFO, VOCAB

CONFIGS = {
    **FAMILIES,
    "llama": {**FAMILIES["llama"], "num_key_value_heads": 4},  # every head its own group
    # no hook of their own: the same recognition (`dense` output, head_dim, GQA) covers them
    "phi": {"model_type": "phi", **COMMON, **DECODER},
    "gemma": {"model_type": "gemma", **COMMON, **DECODER, "num_key_value_heads": 2,
              "head_dim": 16},
    "opt": {"model_type": "opt", **COMMON, **DECODER, "ffn_dim": 128, "word_embed_proj_dim": 64},
}  # fmt: skip


def hf_config(tmp_path, family: str) -> ModelConfig:
    path = tmp_path / f"{family}.json"
    path.write_text(json.dumps(CONFIGS[family]))
    return ModelConfig(name="hf", options={"config": str(path)})


@pytest.mark.parametrize("family", list(CONFIGS))
def test_structured_heads_and_mlp_over_three_steps(tmp_path, family):
    cfg = hf_config(tmp_path, family)
    torch.manual_seed(0)
    model = build_model(cfg, INFO)
    prune = PruneConfig(structure="structured", latency=False)
    pruner = make_pruner(prune, model, model_spec(cfg), INFO)
    layouts = pruner.head_layouts
    assert len(layouts) == 2  # every decoder layer's attention is recognised
    original = {layout.name: counts(layout) for layout in layouts}
    ids = torch.randint(3, VOCAB, (2, 16))
    for target in schedules.geometric(0.75, steps=3):
        model = pruner.prune_to(model, target)
        for layout in layouts:
            q0, kv0 = original[layout.name]
            kv = head_keep(target, kv0)  # whole key/value groups, from the ORIGINAL count
            assert counts(layout) == (kv * q0 // kv0, kv)
        assert pruner.measure(model)["achieved_sparsity"] == pytest.approx(target, abs=0.01)
        model.train()
        out = model(input_ids=ids, labels=ids)
        assert out.logits.shape == (2, 16, VOCAB)
        out.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert counts(layouts[0])[1] == head_keep(0.75, original[layouts[0].name][1])
    model.eval()
    generated = model.generate(ids[:1, :4], max_new_tokens=4, do_sample=False)
    assert generated.shape == (1, 8)
    # the pruned state rebuilds on a fresh model (heads cut again from the recorded indices)
    tensors, meta = pack(model, pruner, {})
    rebuilt, _ = restore(cfg, prune, INFO, tensors, meta)
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(input_ids=ids).logits, model(input_ids=ids).logits)
    # and an export reloads it, head cuts included, without pickle
    export_model(model, tmp_path / "export", cfg, prune, INFO, meta["pruner"])
    loaded = load_pruned(tmp_path / "export")
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_hf_image_classifier_heads_are_cut_whole(tmp_path):
    path = tmp_path / "vit.json"
    path.write_text(json.dumps({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
                                "num_attention_heads": 4, "intermediate_size": 64,
                                "patch_size": 8}))  # fmt: skip
    cfg = ModelConfig(name="hf", options={"config": str(path)})
    info = DataInfo("classification", num_classes=3, in_channels=3, image_size=16)
    model = build_model(cfg, info)
    prune = PruneConfig(structure="structured", latency=False)
    pruner = make_pruner(prune, model, model_spec(cfg), info)
    assert pruner.ignored["classifier"] == "classifier outputs (classes) are never pruned"
    model = pruner.prune_to(model, 0.5)
    assert [counts(layout) for layout in pruner.head_layouts] == [(2, 2), (2, 2)]
    assert model(torch.randn(2, 3, 16, 16)).logits.shape == (2, 3)
    assert pruner.measure(model)["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("family", ["deit", "levit"])
def test_hf_image_classifiers_with_several_heads_build(family):
    """DeiT and LeViT map to two classes in transformers (with and without a teacher), which it
    chooses by iterating `config.architectures`: None in a config made from scratch."""
    cfg = ModelConfig(name="hf", options={"config": {"model_type": family}})
    info = DataInfo("classification", num_classes=3, in_channels=3, image_size=32)
    model = build_model(cfg, info)
    assert type(model).__name__.endswith("ForImageClassification")
    assert model(torch.randn(2, 3, 32, 32)).logits.shape == (2, 3)


def test_hf_folder_weights_and_an_export_that_carries_its_config(tmp_path):
    """model.name=hf with model.weights = a save_pretrained folder: the architecture and the
    weights come from it; the model config an export stores rebuilds without the folder."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from prunebench.export.pruned import rebuildable
    from prunebench.models.weights import load_pretrained

    raw = dict(CONFIGS["qwen2"])
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "tiny-qwen2")
    source = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny-qwen2")
    cfg = ModelConfig(name="hf", weights=tmp_path / "tiny-qwen2")
    assert cfg.task == "causal_lm"  # read from config.json's architectures, before building
    model = build_model(cfg, INFO)
    load_pretrained(model, cfg, INFO)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    stored = rebuildable(cfg.model_dump(mode="json"), None)
    assert "weights" not in stored and stored["options"]["config"]["model_type"] == "qwen2"
    rebuilt = build_model(ModelConfig(**stored), INFO)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


# Attention the hooks recognise by name and shape but cannot cut exactly: ALiBi slopes per head
# (BLOOM), multi-query fused projections (GPT-BigCode), grouped fused qkv (Falcon's new
# architecture), a q/k norm over all heads at once (OLMo-2). Their heads are kept, with the
# reason recorded, and the MLP widths are still pruned over iterative steps.
KEPT = {
    "bloom": {"model_type": "bloom", **COMMON, "hidden_size": 64, "n_layer": 2, "n_head": 4},
    "gpt_bigcode": {"model_type": "gpt_bigcode", "vocab_size": VOCAB, "n_embd": 64,
                    "n_layer": 2, "n_head": 4, "n_positions": 64, "multi_query": True},
    "falcon": {"model_type": "falcon", **COMMON, **DECODER, "new_decoder_architecture": True,
               "num_kv_heads": 2},
    "olmo2": {"model_type": "olmo2", **COMMON, **DECODER, "num_key_value_heads": 2},
}  # fmt: skip


@pytest.mark.parametrize("family", list(KEPT))
def test_attention_that_cannot_be_cut_exactly_keeps_its_heads(family):
    cfg = ModelConfig(name="hf", options={"config": KEPT[family]})
    torch.manual_seed(0)
    model = build_model(cfg, INFO)
    mlp_before = sum(p.numel() for n, p in model.named_parameters() if "mlp" in n)
    attention = {n: p.shape for n, p in model.named_parameters() if "attn" in n or "attention" in n}
    pruner = make_pruner(PruneConfig(structure="structured", latency=False), model,
                         model_spec(cfg), INFO)  # fmt: skip
    assert pruner.head_layouts == []
    reasons = [r for r in pruner.ignored.values() if "attention heads" in r]
    assert reasons and all("kept" in r and "MLP widths are still pruned" in r for r in reasons)
    ids = torch.randint(3, VOCAB, (2, 16))
    for target in schedules.geometric(0.75, steps=3):
        model = pruner.prune_to(model, target)
        out = model(input_ids=ids, labels=ids)
        assert out.logits.shape == (2, 16, VOCAB)
        out.loss.backward()
    assert {n: p.shape for n, p in model.named_parameters() if n in attention} == attention
    assert sum(p.numel() for n, p in model.named_parameters() if "mlp" in n) < mlp_before
    assert pruner.measure(model)["achieved_sparsity"] == pytest.approx(0.75, abs=0.01)
    model.eval()
    assert model.generate(ids[:1, :4], max_new_tokens=4, do_sample=False).shape == (1, 8)


class _GlobalNormAttention(torch.nn.Module):
    """Multi-head attention whose queries are normalised over ALL heads at once: cutting a head
    still runs but changes what every other head computes."""

    def __init__(self, width: int = 32, heads: int = 4, global_norm: bool = True) -> None:
        super().__init__()
        self.head_dim, self.global_norm = width // heads, global_norm
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            torch.nn.Linear(width, width) for _ in range(4)
        )

    def forward(self, x):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if self.global_norm:
            q = torch.nn.functional.normalize(q, dim=-1) * 4
        heads = q.shape[-1] // self.head_dim

        def split(t):
            return t.view(*t.shape[:2], heads, self.head_dim).transpose(1, 2)

        att = torch.softmax(split(q) @ split(k).transpose(-1, -2), -1) @ split(v)
        return self.o_proj(att.transpose(1, 2).flatten(2))


@pytest.mark.parametrize("global_norm", [False, True])
def test_head_cuts_are_trusted_only_when_exact(global_norm):
    from prunebench.models.hf import hf_heads
    from prunebench.pruning.heads import inexact_cuts

    torch.manual_seed(0)
    model = torch.nn.Sequential(_GlobalNormAttention(global_norm=global_norm))
    layouts = hf_heads(model)
    assert [layout.layout for layout in layouts] == ["separate"]
    before = {n: p.clone() for n, p in model.state_dict().items()}
    x = torch.randn(2, 5, 32)
    output = model(x)
    failed = inexact_cuts(model, layouts, None, x)
    if global_norm:
        assert list(failed) == ["0"]
        assert "changes what the other heads compute" in failed["0"]
    else:
        assert failed == {}
    # the trial (made on the model itself, no copy) leaves it as it was
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())
    assert model[0].q_proj.out_features == 32 and torch.equal(model(x), output)
