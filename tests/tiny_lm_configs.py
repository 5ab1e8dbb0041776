"""Tiny random causal-LM configs that transformers builds offline (vocab 128, hidden 64, 2 layers,
4 heads), shared by the model and export tests."""

from __future__ import annotations

from prunebench.data.info import DataInfo

VOCAB = 128
INFO = DataInfo(task="causal_lm", vocab_size=VOCAB, seq_len=16)
COMMON = {"vocab_size": VOCAB, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
          "max_position_embeddings": 64}  # fmt: skip
DECODER = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 4}  # fmt: skip
GPT2 = {"model_type": "gpt2", "vocab_size": VOCAB, "n_embd": 64, "n_layer": 2, "n_head": 4,
        "n_positions": 64, "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip
# The five families the export and model tests both round-trip (Llama with GQA: 2 kv groups).
FAMILIES = {
    "llama": {"model_type": "llama", **COMMON, **DECODER, "num_key_value_heads": 2},
    "qwen2": {"model_type": "qwen2", **COMMON, **DECODER, "num_key_value_heads": 2},
    "mistral": {"model_type": "mistral", **COMMON, **DECODER, "num_key_value_heads": 2,
                "sliding_window": None},
    "gpt2": GPT2,
    "gpt_neox": {"model_type": "gpt_neox", **COMMON, **DECODER},
}  # fmt: skip

# A tiny GPT-Neo run over the synthetic stories, two pruning steps (the `eval:` tests' run).
STORIES_RUN = [
    "device=cpu", "data.name=synthetic_stories", "data.options={stories: 80}",
    "data.seq_len=16", "data.batch_size=16", "model.name=gpt_neo",
    "model.options={hidden_size: 32, intermediate_size: 64}", "pretrain.epochs=1",
    "pretrain.optimizer={name: adamw, lr: 0.01, weight_decay: 0.0}",
    "finetune.mode=fixed", "finetune.epochs=1", "prune.latency=false",
    "regime.name=manual", "regime.targets=[0.3, 0.6]",
]  # fmt: skip
