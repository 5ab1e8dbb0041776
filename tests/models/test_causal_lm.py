"""The causal-LM task (token-weighted perplexity), GPT-Neo weights from local files, and a whole
pruning run on the offline synthetic stories with patience on validation perplexity."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from prunebench.config.loading import load_run_config
from prunebench.data import DataInfo
from prunebench.data.memory import TensorLoader
from prunebench.engine.finetune import monitored_value
from prunebench.engine.pretrain import initial_model
from prunebench.engine.single_run import run
from prunebench.errors import CheckpointError, ConfigError
from prunebench.models import MODELS
from prunebench.store.checkpoints import save_tensors
from prunebench.store.database import Store
from prunebench.store.example_outcomes import unpack
from prunebench.tasks import make_task

VOCAB = 11


class TableLM(nn.Module):
    """logits[b, t] = table[ids[b, t]]: a fixed model whose NLL is easy to compute by hand."""

    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(VOCAB, VOCAB)

    def forward(self, ids):
        return self.table(ids)


def test_perplexity_is_exp_of_total_nll_over_total_tokens():
    torch.manual_seed(0)
    model = TableLM()
    inputs = torch.randint(0, VOCAB, (7, 5))
    targets = torch.randint(0, VOCAB, (7, 5))
    targets[6, 2:] = -100  # padding in the short last batch is not scored
    loader = TensorLoader(inputs, targets, batch_size=3)  # batches of 3, 3 and 1 sequences
    got = make_task("causal_lm").evaluate(model, loader, torch.device("cpu"))

    table = model.table.weight.detach().double()
    nll, count, batch_means = 0.0, 0, []
    for start in (0, 3, 6):
        b_nll, b_count = 0.0, 0
        for i in range(start, min(start + 3, 7)):
            for t in range(5):
                y = int(targets[i, t])
                if y == -100:
                    continue
                row = table[int(inputs[i, t])]
                b_nll -= float(row[y] - torch.logsumexp(row, 0))
                b_count += 1
        nll, count = nll + b_nll, count + b_count
        batch_means.append(b_nll / b_count)
    assert count == 32
    assert got["loss"] == pytest.approx(nll / count, rel=1e-6)  # float32 logits
    assert got["ppl"] == pytest.approx(math.exp(nll / count), rel=1e-6)
    assert got["ppl"] != pytest.approx(math.exp(sum(batch_means) / 3), rel=1e-6)


def test_patience_monitors_validation_perplexity_lower_is_better():
    task = make_task("causal_lm")
    assert task.metric == "ppl" and not task.higher_is_better
    assert monitored_value({"loss": 2.0, "ppl": math.exp(2.0)}, "val_metric", task) == (
        math.exp(2.0),
        False,
    )


def tiny_neo_dir(tmp_path, hidden=32, vocab=50):
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    torch.manual_seed(1)
    config = GPTNeoConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_layers=2,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        window_size=16,
        attention_types=[[["global", "local"], 1]],
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPTNeoForCausalLM(config)
    model.save_pretrained(tmp_path)
    return model


def neo_config(*extra):
    return load_run_config(
        None, ["data.name=synthetic_stories", "model.name=gpt_neo", "pretrain.epochs=0", *extra]
    )


def test_gpt_neo_from_a_local_hugging_face_folder(tmp_path):
    saved = tiny_neo_dir(tmp_path)
    cfg = neo_config(f"model.weights={tmp_path}")
    data = SimpleNamespace(info=DataInfo(task="causal_lm", vocab_size=50, seq_len=16))
    model = initial_model(cfg, data)
    assert model.config.hidden_size == 32  # the folder's architecture, not the preset's
    for key, value in saved.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    ids = torch.randint(0, 50, (1, 8))
    saved.eval(), model.eval()
    torch.testing.assert_close(model(ids).logits, saved(ids).logits)


def test_mismatched_weights_name_the_key_and_shapes(tmp_path):
    saved = tiny_neo_dir(tmp_path / "hf")
    state_file = tmp_path / "neo.safetensors"
    save_tensors(state_file, saved.state_dict(), {})
    cfg = neo_config(f"model.weights={state_file}")  # preset 'tiny' is 64 wide
    data = SimpleNamespace(info=DataInfo(task="causal_lm", vocab_size=50, seq_len=16))
    with pytest.raises(CheckpointError, match=r"'transformer.wte.weight' has shape \(50, 32\), "
                       r"the model expects \(50, 64\)"):  # fmt: skip
        initial_model(cfg, data)
    bigger_vocab = SimpleNamespace(info=DataInfo(task="causal_lm", vocab_size=300, seq_len=16))
    with pytest.raises(ConfigError, match=r"vocabulary of 50 tokens but the tokenizer has 300"):
        initial_model(neo_config(f"model.weights={tmp_path / 'hf'}"), bigger_vocab)


def test_unknown_model_option_is_a_config_error(tmp_path):
    info = DataInfo(task="causal_lm", vocab_size=50, seq_len=16)
    with pytest.raises(ConfigError, match=r"model\.weights: .* has no config\.json"):
        MODELS.get("gpt_neo").build(info, weights=tmp_path)  # an empty folder
    with pytest.raises(ConfigError, match=r"model\.options\.size 'huge'"):
        MODELS.get("gpt_neo").build(info, size="huge")
    with pytest.raises(ConfigError, match=r"model\.options\.hiden_size"):
        MODELS.get("gpt_neo").build(info, hiden_size=8)


def test_pruning_run_on_synthetic_stories_reports_perplexity(tmp_path):
    cfg = load_run_config(
        None,
        [
            "device=cpu",
            "data.name=synthetic_stories",
            "data.options={stories: 150}",
            "data.seq_len=32",
            "data.batch_size=16",
            "model.name=gpt_neo",
            "model.options={hidden_size: 32, intermediate_size: 64}",
            "pretrain.epochs=2",
            "pretrain.optimizer={name: adamw, lr: 0.01, weight_decay: 0.0}",
            "finetune.max_epochs=2",
            "finetune.patience=1",
            "finetune.monitor=val_metric",
            "regime.name=geometric",
            "regime.target=0.75",
            "regime.steps=2",
        ],
    )
    result = run(cfg, Store(tmp_path))
    assert result.status == "done" and len(result.rows) == 2
    store = Store(tmp_path)
    fields = store.run(result.run_id)
    assert fields["metric"] == "ppl" and fields["task"] == "causal_lm"
    assert fields["dense_test_ppl"] < 0.5 * 120  # learned: far below a uniform guess (~vocab)
    for row in result.rows:
        assert row["test_ppl"] == pytest.approx(math.exp(row["test_loss"]))
        assert row["pruned_test_ppl"] == pytest.approx(math.exp(row["pruned_test_loss"]))
        epochs = store.epochs(result.run_id, row["step"])
        assert row["best_val_metric"] == min(e["val_metric"] for e in epochs)
        assert row["achieved_sparsity"] == pytest.approx(row["target"], abs=1e-4)
        outcomes = unpack(row["test_outcomes"])  # each sequence knows its story (cluster)
        assert outcomes.groups is not None and outcomes.groups.size == outcomes.values.size
        assert 1 < np.unique(outcomes.groups).size < outcomes.values.size
        assert (np.diff(outcomes.groups) >= 0).all()  # sequences follow the stories' order
    prunable = __import__("json").loads(fields["prunable_json"])
    assert "tied to 'transformer.wte.weight'" in prunable["excluded"]["lm_head.weight"]
    assert "Embedding" in prunable["excluded"]["transformer.wte.weight"]
    assert "LayerNorm" in prunable["excluded"]["transformer.ln_f.weight"]
    assert all(".attn." in n or ".mlp." in n for n in prunable["prunable"])


def test_structured_gpt_neo_run_resumes_from_a_stored_pruned_state(tmp_path):
    """Heads and MLP channels removed through the runner; a longer schedule reuses the stored
    steps, rebuilding the pruned GPT-Neo from its pruning history before its own last step."""
    base = [
        "device=cpu", "data.name=synthetic_stories", "data.options={stories: 120}",
        "data.seq_len=32", "data.batch_size=16", "model.name=gpt_neo",
        "model.options={hidden_size: 32, intermediate_size: 64}", "pretrain.epochs=1",
        "pretrain.optimizer={name: adamw, lr: 0.01, weight_decay: 0.0}",
        "finetune.mode=fixed", "finetune.epochs=1", "prune.structure=structured",
        "prune.latency=false", "regime.name=manual",
    ]  # fmt: skip
    store = Store(tmp_path)
    first = run(load_run_config(None, [*base, "regime.targets=[0.25, 0.5]"]), store)
    longer = run(load_run_config(None, [*base, "regime.targets=[0.25, 0.5, 0.75]"]), store)
    assert [r["reused"] for r in longer.rows] == [1, 1, 0]
    assert longer.rows[1]["test_ppl"] == first.rows[1]["test_ppl"]
    assert [r["achieved_sparsity"] for r in longer.rows] == pytest.approx([0.25, 0.5, 0.75])
    for row in longer.rows:
        assert row["test_ppl"] == pytest.approx(math.exp(row["test_loss"]))
