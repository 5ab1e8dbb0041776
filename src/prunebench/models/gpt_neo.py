"""GPT-Neo from transformers (TinyStories-33M is a GPT-Neo, paper section 4.3).

Architecture: with `model.weights` pointing at a local Hugging Face folder (e.g. a download of
roneneldan/TinyStories-33M) the configuration is read from it and the weights come from
`from_pretrained(folder)`; otherwise `model.options.size` picks a preset ("tiny" for tests and
the offline demo, "tinystories-33m"), and any GPTNeoConfig field may be overridden in options.

Pruning decisions (recorded here because they shape every GPT-Neo result):
  * unstructured: Linear weights of attention (q/k/v/out) and MLP (c_fc/c_proj). The token and
    position embeddings and the LayerNorms are excluded; `lm_head` shares its weight with the
    token embedding and is therefore excluded (and reported as tied) as well.
  * structured: whole attention heads (head_dim kept, so the attention maths is unchanged) and
    MLP channels. The residual width (hidden_size) is NOT prunable: it is the embedding width,
    and the embedding is tied to `lm_head`; the hooks ignore wte/wpe/lm_head, which makes
    Torch-Pruning leave every group that touches the residual stream alone.
  * after a structured step, each attention module's num_heads/embed_dim and `model.config`
    (num_heads, intermediate_size when uniform across layers; per-layer values in
    `config.prunebench_structure`) are updated. GPT-Neo ties head_dim to hidden_size/num_heads
    in its config, so a head-pruned model cannot round-trip through `from_pretrained`;
    prunebench rebuilds pruned models from its own pruning history instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunebench.data.info import DataInfo
from prunebench.errors import CheckpointError, ConfigError
from prunebench.models.spec import ModelSpec, StructuredHooks
from prunebench.store.checkpoints import read_state_dict

NO_DROPOUT = {"embed_dropout": 0.0, "attention_dropout": 0.0, "resid_dropout": 0.0}
PRESETS: dict[str, dict[str, Any]] = {
    # roneneldan/TinyStories-33M's config.json
    "tinystories-33m": {
        "hidden_size": 768,
        "num_layers": 4,
        "num_heads": 16,
        "intermediate_size": None,  # 4 * hidden_size
        "max_position_embeddings": 2048,
        "window_size": 256,
        "attention_types": [[["global", "local"], 2]],
        "activation_function": "gelu_new",
        **NO_DROPOUT,
    },
    # seconds per epoch on a CPU: for tests and the offline synthetic-stories demo
    "tiny": {
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "intermediate_size": 256,
        "max_position_embeddings": 256,
        "window_size": 64,
        "attention_types": [[["global", "local"], 1]],
        "activation_function": "gelu_new",
        **NO_DROPOUT,
    },
}


def build_gpt_neo(
    info: DataInfo, size: str = "tiny", weights: Path | None = None, **overrides: Any
) -> nn.Module:
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    vocab = info.vocab_size
    if weights is not None and Path(weights).is_dir():
        if not (Path(weights) / "config.json").is_file():  # transformers would use defaults
            raise ConfigError(
                f"model.weights: '{weights}' has no config.json; point it at a Hugging Face "
                "GPT-Neo model folder (e.g. a download of roneneldan/TinyStories-33M)"
            )
        try:
            config = GPTNeoConfig.from_pretrained(str(weights), local_files_only=True)
        except (OSError, ValueError) as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(
                f"model.weights: '{weights}' is not a GPT-Neo model folder: {reason}"
            ) from None
        if vocab is not None and config.vocab_size < vocab:
            raise ConfigError(
                f"model.weights: '{weights}' has a vocabulary of {config.vocab_size} tokens but "
                f"the tokenizer has {vocab}; use the tokenizer that belongs to the model"
            )
    else:
        if size not in PRESETS:
            raise ConfigError(
                f"model.options.size '{size}' is unknown (known: {', '.join(PRESETS)})"
            )
        vocab = vocab or 50257
        special = 50256 if vocab > 50256 else None  # GPT-2's <|endoftext|>, when it exists
        config = GPTNeoConfig(
            vocab_size=vocab, bos_token_id=special, eos_token_id=special, **PRESETS[size]
        )
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise ConfigError(f"model.options.{key} is not a GPTNeoConfig field")
        setattr(config, key, value)
    if info.seq_len is not None and info.seq_len > config.max_position_embeddings:
        raise ConfigError(
            f"data.seq_len={info.seq_len} exceeds the model's max_position_embeddings="
            f"{config.max_position_embeddings}"
        )
    config.use_cache = False  # training and tracing; generate() turns the cache on itself
    config._attn_implementation = "eager"
    return GPTNeoForCausalLM(config)


def read_gpt_neo_weights(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """A Hugging Face folder (from_pretrained, local files only) or a state-dict file."""
    if not path.is_dir():
        state = read_state_dict(path)
        if "lm_head.weight" not in state and "transformer.wte.weight" in state:
            state = {**state, "lm_head.weight": state["transformer.wte.weight"]}  # tied
        return state
    from transformers import GPTNeoForCausalLM

    try:
        loaded = GPTNeoForCausalLM.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise CheckpointError(f"cannot load a GPT-Neo model from '{path}': {reason}") from None
    return loaded.state_dict()


def attentions(model: nn.Module) -> list[nn.Module]:
    return [block.attn.attention for block in model.transformer.h]


def logits_of(output: Any) -> torch.Tensor:
    return output.logits


def forward_ids(model: nn.Module, input_ids: torch.Tensor) -> Any:
    return model(input_ids=input_ids, use_cache=False)


def gpt_neo_pruner_kwargs(model: nn.Module) -> dict[str, Any]:
    """Heads (q/k/v pruned together) and MLP widths; the residual width is kept (see above)."""
    attns = attentions(model)
    num_heads = {proj: a.num_heads for a in attns for proj in (a.q_proj, a.k_proj, a.v_proj)}
    return {
        "num_heads": num_heads,
        "prune_num_heads": True,
        "prune_head_dims": False,
        "ignored_layers": [model.lm_head, model.transformer.wte, model.transformer.wpe],
        "output_transform": logits_of,
        "forward_fn": forward_ids,
    }


def gpt_neo_after_step(model: nn.Module, pruner: Any = None) -> None:
    """Head counts from the layer shapes (head_dim kept), so this also serves a model rebuilt
    from a pruning history, where no pruner exists (`pruner=None`)."""
    for a in attentions(model):
        heads = a.q_proj.out_features // a.head_dim
        if pruner is not None and pruner.num_heads[a.q_proj] != heads:
            raise RuntimeError(
                f"GPT-Neo head bookkeeping differs: {pruner.num_heads[a.q_proj]} vs {heads}"
            )
        a.num_heads = heads
        a.embed_dim = a.q_proj.out_features  # = num_heads * head_dim
    record_structure(model)


def record_structure(model: nn.Module) -> None:
    """Write the (possibly per-layer) widths into model.config."""
    heads = [a.num_heads for a in attentions(model)]
    inner = [block.mlp.c_fc.out_features for block in model.transformer.h]
    config = model.config
    config.prunebench_structure = {"num_heads": heads, "intermediate_size": inner}
    if len(set(heads)) == 1:
        config.num_heads = heads[0]
    if len(set(inner)) == 1:
        config.intermediate_size = inner[0]


def gpt_neo_example_inputs(info: DataInfo) -> torch.Tensor:
    return torch.randint(0, info.vocab_size or 2, (1, min(info.seq_len or 32, 128)))


SPEC = ModelSpec(
    build=build_gpt_neo,
    task="causal_lm",
    classifier="lm_head",
    description="transformers GPT-Neo: a local HF folder (TinyStories-33M) or a preset size",
    read_weights=read_gpt_neo_weights,
    example_inputs=gpt_neo_example_inputs,
    structured=StructuredHooks(pruner_kwargs=gpt_neo_pruner_kwargs, after_step=gpt_neo_after_step),
)
