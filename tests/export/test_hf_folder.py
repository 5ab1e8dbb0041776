"""`export --format hf`: tiny Llama (GQA), Qwen2, Mistral, GPT-2 and GPT-NeoX, pruned
structured (prune.uniform_widths) and unstructured, written as from_pretrained folders that load
with no custom code, to the logits of `load_pruned`, and generate; shapes a config cannot
express are refused in one line that names the option, with nothing written."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from prunebench.config.schema import ModelConfig, PruneConfig
from prunebench.data.info import DataInfo
from prunebench.engine.pruned_state import pack, stored_masks
from prunebench.errors import PrunebenchError
from prunebench.export.hf_folder import write_hf_folder
from prunebench.export.pruned import export_model, load_pruned
from prunebench.models.build import build_model, model_spec
from prunebench.pruning.factory import make_pruner
from tiny_lm_configs import FAMILIES, INFO, VOCAB

# Configs whose MLP width field defaults to None (= 4 x hidden_size) or that have none at all.
HIDDEN = {"vocab_size": VOCAB, "hidden_size": 64, "bos_token_id": 1, "eos_token_id": 2}
MORE = {
    "gpt_neo": {"model_type": "gpt_neo", **HIDDEN, "num_layers": 2, "num_heads": 4,
                "attention_types": [[["global", "local"], 1]], "max_position_embeddings": 64},
    "falcon": {"model_type": "falcon", **HIDDEN, "num_hidden_layers": 2,
               "num_attention_heads": 4, "new_decoder_architecture": True, "num_kv_heads": 2},
    "bloom": {"model_type": "bloom", **HIDDEN, "n_layer": 2, "n_head": 4},
}  # fmt: skip


def pruned(tmp_path, family: str, prune: PruneConfig, target: float = 0.5):
    path = tmp_path / f"{family}.json"
    path.write_text(json.dumps({**FAMILIES, **MORE}[family]))
    cfg = ModelConfig(name="hf", options={"config": str(path)})
    torch.manual_seed(0)
    model = build_model(cfg, INFO)
    pruner = make_pruner(prune, model, model_spec(cfg), INFO)
    model = pruner.prune_to(model, target)
    return model.eval(), pruner, cfg


def prunebench_export(tmp_path, model, pruner, cfg, prune):
    tensors, meta = pack(model, pruner, {})
    out = tmp_path / "prunebench"
    export_model(model, out, cfg, prune, INFO, meta["pruner"], masks=stored_masks(tensors))
    return load_pruned(out)


UNIFORM = PruneConfig(structure="structured", uniform_widths=True, latency=False)
UNSTRUCTURED = PruneConfig(structure="unstructured", latency=False)


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("prune", [UNIFORM, UNSTRUCTURED], ids=["structured", "unstructured"])
def test_a_pruned_model_loads_with_from_pretrained_to_the_same_logits(tmp_path, family, prune):
    model, pruner, cfg = pruned(tmp_path, family, prune)
    reference = prunebench_export(tmp_path, model, pruner, cfg, prune)
    ids = torch.randint(3, VOCAB, (2, 12))
    folder = write_hf_folder(model, tmp_path / "hf", "causal_lm", ids, name=family)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
    ]
    loaded, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values()), info
    loaded.eval()
    with torch.no_grad():
        mine = reference(input_ids=ids, use_cache=False).logits
        theirs = loaded(input_ids=ids).logits
    assert (mine - theirs).abs().max() < 1e-4
    reference_params = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in loaded.parameters()) == reference_params
    if prune.structure == "structured":  # the MLP lost half its channels in every layer
        assert reference_params < sum(p.numel() for p in build_model(cfg, INFO).parameters())
    else:
        linear = [m.weight for m in loaded.modules() if isinstance(m, torch.nn.Linear)]
        zeros = sum(int((w == 0).sum()) for w in linear) / sum(w.numel() for w in linear)
        assert zeros > 0.3 or family == "gpt2"  # GPT-2's Conv1D layers, not nn.Linear
    generated = loaded.generate(ids[:1, :4], max_new_tokens=4, do_sample=False)
    expected = reference.generate(ids[:1, :4], max_new_tokens=4, do_sample=False)
    assert torch.equal(generated, expected)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_uniform_widths_keeps_every_layer_alike(tmp_path, family):
    """Global scope ranks channels across layers; uniform_widths evens the counts out, and keeps
    the heads of models whose config ties the head width to the hidden size (GPT-2)."""
    prune = PruneConfig(structure="structured", uniform_widths=True, latency=False)
    _, pruner, _ = pruned(tmp_path, family, prune, target=0.4)
    widths = pruner.current_channels()
    assert len(set(widths)) == 1
    assert widths[0] < pruner.groups[0].original
    heads = {layout.name: layout.projections[0].weight.shape for layout in pruner.head_layouts}
    if family == "gpt2":
        assert heads == {}  # kept: GPT2Config cannot express fewer heads
        assert "ties the head width" in pruner.ignored["transformer.h.0.attn.c_attn"]
    else:
        assert len(set(heads.values())) == 1


PER_LAYER = PruneConfig(
    structure="structured",
    scope="preset",
    layer_ratios={"model.layers.0.mlp": 0.6, "model.layers.1.mlp": 0.2},
    latency=False,
)


@pytest.mark.parametrize(
    ("family", "prune", "what"),
    [
        (
            "gpt2",
            PruneConfig(structure="structured", scope="layerwise", latency=False),
            "GPT2Config",
        ),
        ("llama", PER_LAYER, "(intermediate_size)"),
    ],
    ids=["gpt2-heads", "llama-per-layer-mlp"],
)
def test_shapes_the_config_cannot_express_are_refused_naming_the_option(
    tmp_path, family, prune, what
):
    model, _, _ = pruned(tmp_path, family, prune, target=0.5)
    out = tmp_path / "hf"
    with pytest.raises(PrunebenchError) as err:
        write_hf_folder(model, out, "causal_lm", torch.randint(3, VOCAB, (1, 8)), name="run x")
    message = str(err.value)
    assert "\n" not in message and "prune.uniform_widths=true" in message and what in message
    assert not out.exists() and not list(tmp_path.glob(".hf.*"))


@pytest.mark.parametrize("family", ["gpt_neo", "falcon"])
def test_an_mlp_width_whose_field_defaults_to_none_is_written(tmp_path, family):
    """GPT-Neo's intermediate_size and Falcon's ffn_hidden_size are None for 4 x hidden_size:
    the pruned width is written into that field and loads to the same logits."""
    model, _, _ = pruned(tmp_path, family, UNIFORM)
    ids = torch.randint(3, VOCAB, (2, 12))
    folder = write_hf_folder(model, tmp_path / "hf", "causal_lm", ids, name=family)
    config = json.loads((folder / "config.json").read_text())
    field = {"gpt_neo": "intermediate_size", "falcon": "ffn_hidden_size"}[family]
    assert config[field] == 128  # half of 4 x 64: the MLP lost half its channels
    loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        gap = model(input_ids=ids, use_cache=False).logits - loaded(input_ids=ids).logits
    assert gap.abs().max() < 1e-4


def test_a_width_no_config_field_holds_is_refused_naming_exclude(tmp_path):
    """Bloom's MLP is 4 x hidden_size with no field: to a run pruned with uniform widths
    already, the message names the ways that do help."""
    model, _, _ = pruned(tmp_path, "bloom", UNIFORM)
    out = tmp_path / "hf"
    ids = torch.randint(3, VOCAB, (1, 8))
    with pytest.raises(PrunebenchError) as err:
        write_hf_folder(model, out, "causal_lm", ids, name="run x", uniform_widths=True)
    message = str(err.value)
    assert "BloomConfig cannot express the pruned shapes" in message and "\n" not in message
    assert "prune.exclude" in message and "unstructured" in message
    assert "uniform_widths" not in message
    assert not out.exists() and not list(tmp_path.glob(".hf.*"))


def test_the_run_s_tokenizer_files_go_into_the_folder(tmp_path):
    from prunebench.data.synthetic_stories import build_tokenizer, generate_stories

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(generate_stories(50)), eos_token="<|endoftext|>"
    )
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    model, _, _ = pruned(tmp_path, "llama", UNSTRUCTURED)
    folder = write_hf_folder(
        model, tmp_path / "hf", "causal_lm", torch.randint(3, VOCAB, (1, 8)), tmp_path / "tokenizer"
    )
    assert (folder / "tokenizer.json").is_file()
    again = AutoTokenizer.from_pretrained(folder)
    assert again("the cat")["input_ids"] == tokenizer("the cat")["input_ids"]


def test_an_existing_folder_with_files_is_refused(tmp_path):
    model, _, _ = pruned(tmp_path, "llama", UNSTRUCTURED)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "notes.txt").write_text("mine")
    with pytest.raises(PrunebenchError, match="not an empty folder"):
        write_hf_folder(model, tmp_path / "hf", "causal_lm", torch.randint(3, VOCAB, (1, 8)))
    assert (tmp_path / "hf" / "notes.txt").read_text() == "mine"


@pytest.mark.slow
@pytest.mark.parametrize("structure", ["structured", "unstructured"])
def test_a_run_exports_with_the_cli_to_the_logits_of_load_pruned(tmp_path, invoke, structure):
    """The shipped path: a tiny GQA Llama trained and pruned on the generated stories, then
    `prunebench export --format hf`; the folder's logits equal `load_pruned`'s."""
    from prunebench.config.loading import load_run_config
    from prunebench.engine.single_run import run
    from prunebench.export.pruned import export_step
    from prunebench.store.database import Store

    (tmp_path / "llama.json").write_text(json.dumps({**FAMILIES["llama"], "vocab_size": 160}))
    cfg = load_run_config(
        None,
        ["device=cpu", "data.name=synthetic_stories", "data.options={stories: 80}",
         "data.seq_len=16", "data.batch_size=16", "model.name=hf",
         f"model.options={{config: {tmp_path / 'llama.json'}}}", "pretrain.epochs=1",
         "finetune.max_epochs=1", "prune.latency=false", f"prune.structure={structure}",
         "regime.name=one_shot", "regime.target=0.5"]
        + (["prune.uniform_widths=true", "prune.criterion=magnitude"]
           if structure == "structured" else []),
    )  # fmt: skip
    result = run(cfg, Store(tmp_path / "results"))
    code, out, err = invoke(
        "export", str(tmp_path / "results"), str(tmp_path / "hf"), "--run", result.run_id,
        "--format", "hf",
    )  # fmt: skip
    assert code == 0 and "from_pretrained" in out, err
    export_step(tmp_path / "results", result.run_id, None, tmp_path / "mine")
    reference = load_pruned(tmp_path / "mine")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = torch.randint(3, 100, (2, 16))
    with torch.no_grad():
        gap = reference(input_ids=ids, use_cache=False).logits - loaded(input_ids=ids).logits
    assert gap.abs().max() < 1e-4
    assert loaded.config.num_key_value_heads == (1 if structure == "structured" else 2)
    # the generated stories' word tokenizer goes with it: it encodes as the run's data did
    from prunebench.data.build import build_data

    theirs = AutoTokenizer.from_pretrained(tmp_path / "hf", local_files_only=True)
    ours = build_data(cfg.data, torch.device("cpu")).tokenizer
    from prunebench.data.synthetic_stories import generate_stories

    text = generate_stories(1, seed=3)[0]  # words of the corpus: ids, not unknowns
    assert theirs(text)["input_ids"] == ours(text)["input_ids"]
    assert theirs.unk_token_id not in theirs(text)["input_ids"]
    assert theirs.eos_token == ours.eos_token


@pytest.mark.parametrize("prune", [UNIFORM, UNSTRUCTURED], ids=["structured", "unstructured"])
def test_an_image_classifier_loads_with_auto_model_for_image_classification(tmp_path, prune):
    from transformers import AutoModelForImageClassification

    path = tmp_path / "vit.json"
    path.write_text(json.dumps({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
                                "num_attention_heads": 4, "intermediate_size": 64,
                                "patch_size": 8}))  # fmt: skip
    cfg = ModelConfig(name="hf", options={"config": str(path)})
    info = DataInfo("classification", num_classes=3, in_channels=3, image_size=16)
    torch.manual_seed(0)
    model = build_model(cfg, info)
    model = make_pruner(prune, model, model_spec(cfg), info).prune_to(model, 0.5).eval()
    images = torch.randn(2, 3, 16, 16)
    folder = write_hf_folder(model, tmp_path / "hf", "classification", images)
    loaded = AutoModelForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        gap = (model(pixel_values=images).logits - loaded(pixel_values=images).logits).abs()
    assert gap.max() < 1e-4
    assert loaded.config.num_labels == 3
    if prune.structure == "structured":
        assert loaded.config.num_attention_heads == 2 and loaded.config.intermediate_size == 32


def test_heads_cut_from_a_config_that_ties_them_are_refused_with_the_ways_out(tmp_path):
    """The registered `gpt_neo` model prunes heads under uniform widths too; GPTNeoConfig ties
    the head width to the hidden size, so the refusal says so (not the first tensor that
    differs) and names what keeps the heads."""
    cfg = ModelConfig(name="gpt_neo", options={"hidden_size": 32, "intermediate_size": 64})
    torch.manual_seed(0)
    model = build_model(cfg, INFO)
    pruner = make_pruner(UNIFORM, model, model_spec(cfg), INFO)
    model = pruner.prune_to(model, 0.5).eval()
    dense_heads = build_model(cfg, INFO).transformer.h[0].attn.attention.num_heads
    assert model.transformer.h[0].attn.attention.num_heads < dense_heads  # heads were cut
    out = tmp_path / "hf"
    with pytest.raises(PrunebenchError) as err:
        write_hf_folder(model, out, "causal_lm", torch.randint(3, VOCAB, (1, 8)), name="run x")
    message = str(err.value)
    assert message.startswith("run x: its attention lost heads, which a config.json cannot hold")
    assert "ties the head width" in message and "model.name=hf" in message
    assert not out.exists()
