"""Language-model data: packing, the synthetic story corpus, TinyStories in its local formats."""

from __future__ import annotations

import json

import pytest
import torch

from prunebench.config.loading import load_run_config
from prunebench.data import DATASETS
from prunebench.data.synthetic_stories import build_tokenizer, generate_stories
from prunebench.data.text import pack
from prunebench.data.tinystories import load_splits, split
from prunebench.errors import ConfigError

STORIES = generate_stories(60, seed=5)
VALID = generate_stories(10, seed=6)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A GPT-2-style byte-level BPE tokenizer (what GPT-Neo uses), trained on the corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(generate_stories(200), trainer)
    eos = "<|endoftext|>"
    path = tmp_path_factory.mktemp("tokenizer")
    GPT2TokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=eos).save_pretrained(path)
    return path


def data_config(root, tokenizer, *extra):
    return load_run_config(
        None,
        ["device=cpu", "data.name=tinystories", f"data.root={root}", f"data.tokenizer={tokenizer}",
         "data.seq_len=16", "data.batch_size=4", "data.val_fraction=0.1", "model.name=gpt_neo",
         *extra],
    ).data  # fmt: skip


def test_pack_overlaps_windows_by_one_token():
    inputs, targets = pack(torch.arange(11), 3)
    assert inputs.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert targets.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_synthetic_stories_are_deterministic_and_fully_in_vocabulary():
    assert generate_stories(5, seed=1) == generate_stories(5, seed=1)
    assert generate_stories(5, seed=1) != generate_stories(5, seed=2)
    cfg = load_run_config(
        None,
        ["data.name=synthetic_stories", "model.name=gpt_neo", "data.seq_len=32",
         "data.options={stories: 300}", "data.val_fraction=0.1"],
    ).data  # fmt: skip
    a = DATASETS.get("synthetic_stories").build(cfg, torch.device("cpu"))
    b = DATASETS.get("synthetic_stories").build(cfg, torch.device("cpu"))
    assert torch.equal(a.train.inputs, b.train.inputs)
    tokenizer = build_tokenizer(generate_stories(300))
    assert a.info.vocab_size == tokenizer.get_vocab_size()
    assert a.info.seq_len == 32
    stream = torch.cat([a.test.inputs.reshape(-1), a.test.targets[-1, -1:]])
    assert (stream == tokenizer.token_to_id("[UNK]")).sum() == 0
    # 30 test stories, each closed by end-of-text; packing drops at most seq_len tokens
    assert 29 <= int((stream == tokenizer.token_to_id("<|endoftext|>")).sum()) <= 30
    assert torch.equal(a.train.inputs[:, 1:], a.train.targets[:, :-1])
    assert torch.equal(a.train.inputs[1:, 0], a.train.targets[:-1, -1])


def write_txt(path, stories):
    path.write_text("".join(f"{s}\n<|endoftext|>\n" for s in stories))


def test_txt_file_single_split_is_carved_into_val_and_test(tmp_path, tokenizer_dir):
    write_txt(tmp_path / "TinyStories-train.txt", STORIES)
    cfg = data_config(tmp_path / "TinyStories-train.txt", tokenizer_dir)
    train, test = load_splits(cfg.root, {**cfg.options, **_defaults()})
    assert train == STORIES and test is None
    parts = split(train, test, cfg, _defaults())
    assert len(parts["val"]) == len(parts["test"]) == 6 and len(parts["train"]) == 48
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == sorted(STORIES)


def _defaults():
    from prunebench.data.tinystories import DEFAULTS

    return dict(DEFAULTS)


def test_snapshot_folder_with_parquet_and_txt_prefers_parquet(tmp_path, tokenizer_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"text": STORIES}), tmp_path / "data/train-00000-of-00001.parquet")
    pq.write_table(pa.table({"text": VALID}), tmp_path / "data/validation-00000-of-00001.parquet")
    write_txt(tmp_path / "TinyStories-train.txt", ["not this one"] * 5)
    opts = {**_defaults(), "cache_dir": str(tmp_path / "cache")}
    train, test = load_splits(tmp_path, opts)
    assert train == STORIES and test == VALID

    cfg = data_config(tmp_path, tokenizer_dir, f"data.options={{cache_dir: {tmp_path / 'c2'}}}")
    data = DATASETS.get("tinystories").build(cfg, torch.device("cpu"))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    test_story = tok(VALID[0], add_special_tokens=False)["input_ids"]
    assert data.test.inputs[0].tolist() == test_story[:16]
    assert data.info.vocab_size == len(tok) == 300
    tokens = sum(len(tok(v)["input_ids"]) + 1 for v in VALID)  # each story + end-of-text
    assert data.sizes["test"] == (tokens - 1) // 16


def test_jsonl_and_saved_dataset_folder(tmp_path, tokenizer_dir):
    import datasets

    lines = "".join(json.dumps({"story": s}) + "\n" for s in STORIES)
    (tmp_path / "stories.jsonl").write_text(lines)
    opts = {**_defaults(), "text_field": "story", "cache_dir": str(tmp_path / "cache")}
    assert load_splits(tmp_path / "stories.jsonl", opts) == (STORIES, None)
    with pytest.raises(ConfigError, match=r"data\.options\.text_field"):
        load_splits(tmp_path / "stories.jsonl", {**opts, "text_field": "text"})

    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": STORIES}),
            "validation": datasets.Dataset.from_dict({"text": VALID}),
        }
    ).save_to_disk(str(saved))
    assert load_splits(saved, _defaults()) == (STORIES, VALID)
    cfg = data_config(saved, tokenizer_dir, "data.options={train_stories: 20, eval_stories: 3}")
    parts = split(*load_splits(saved, _defaults()), cfg, {**_defaults(), **cfg.options})
    assert [len(parts[k]) for k in ("train", "val", "test")] == [20, 3, 3]


def test_tinystories_errors_name_the_key(tmp_path, tokenizer_dir):
    write_txt(tmp_path / "a-train.txt", STORIES)
    write_txt(tmp_path / "b-train.txt", STORIES)
    with pytest.raises(ConfigError, match=r"data\.options\.train_files"):
        load_splits(tmp_path, _defaults())
    cfg = load_run_config(
        None, ["data.name=tinystories", f"data.root={tmp_path}", "model.name=gpt_neo"]
    ).data
    with pytest.raises(ConfigError, match=r"data\.tokenizer"):
        DATASETS.get("tinystories").build(cfg, torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"data\.options\.story_count"):
        DATASETS.get("tinystories").build(
            data_config(tmp_path, tokenizer_dir, "data.options={story_count: 3}"), "cpu"
        )
