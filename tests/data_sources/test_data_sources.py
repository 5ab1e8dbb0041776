"""The user's own data: image folders, NumPy arrays, Hugging Face datasets on disk and python
datasets, each from tiny files made here; splits, normalisation and errors checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from own_data import DATASET_FILE, MODEL_FILE, image_folders, images, write_folder, write_module
from prunebench.config.loading import load_run_config
from prunebench.data.build import build_data
from prunebench.errors import ConfigError

CPU = torch.device("cpu")


def data_cfg(name, root=None, *extra, model="digits_cnn"):
    overrides = ["device=cpu", f"data.name={name}", f"model.name={model}", "data.batch_size=8"]
    if root is not None:
        overrides.append(f"data.root={root}")
    return load_run_config(None, [*overrides, *extra]).data


def everything(loader):
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_image_folder_with_train_and_test(tmp_path):
    root = image_folders(tmp_path / "imgs", classes=3, size=8)
    bundle = build_data(data_cfg("image_folder", root, "data.augment=false"), CPU)
    info = bundle.info
    assert (info.num_classes, info.in_channels, info.image_size) == (3, 3, 8)
    assert bundle.sizes["test"] == 12 and bundle.sizes["train"] + bundle.sizes["val"] == 36
    # normalisation: the training split's per-channel statistics, computed independently
    x_train, _ = everything(bundle.calibration)
    assert x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (x_train.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4
    # the test split is exactly the test/ folder's images, labels by sorted class name
    x_test, y_test = everything(bundle.test)
    assert sorted(y_test.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    raw = np.concatenate([images(4, label, 8, seed=1) for label in range(3)])
    red = torch.from_numpy(raw[..., 0]).float() / 255
    means = x_test[:, 0].mean(dim=(1, 2))
    assert torch.corrcoef(torch.stack([means, red.mean(dim=(1, 2))]))[0, 1] > 0.999


def test_image_folder_streamed_equals_in_memory(tmp_path):
    root = image_folders(tmp_path / "imgs", classes=2, size=8, val=True)
    memory = build_data(data_cfg("image_folder", root, "data.augment=false"), CPU)
    streamed = build_data(
        data_cfg("image_folder", root, "data.augment=false", "data.options={max_memory_mb: 0}"),
        CPU,
    )
    assert memory.sizes == streamed.sizes == {"train": 24, "val": 6, "test": 8}
    assert not isinstance(streamed.test, type(memory.test))
    for split in ("val", "test"):  # statistics from all 24 training images either way
        (xm, ym), (xs, ys) = (
            everything(getattr(memory, split)),
            everything(getattr(streamed, split)),
        )
        assert torch.equal(ym, ys)
        assert torch.allclose(xm, xs, atol=1e-5)
    x, _ = next(iter(streamed.train))
    assert x.dtype == torch.float32 and x.shape[1:] == (3, 8, 8)


def test_one_folder_is_carved_and_resized(tmp_path):
    root = write_folder(tmp_path / "flat", classes=2, per_class=20, size=16)
    cfg = data_cfg("image_folder", root, "data.image_size=8", "data.options={test_fraction: 0.25}")
    bundle = build_data(cfg, CPU)
    assert bundle.sizes == {"train": 27, "val": 3, "test": 10}
    assert bundle.info.image_size == 8
    _, y_test = everything(bundle.test)
    assert y_test.bincount().tolist() == [5, 5]  # stratified
    again = build_data(cfg, CPU)
    assert torch.equal(everything(again.test)[0], everything(bundle.test)[0])  # seeded


def test_one_class_folder_is_refused(tmp_path):
    root = write_folder(tmp_path / "one", classes=1, per_class=5)
    with pytest.raises(ConfigError, match=r"holds 1 class folder of images \('class_0'\)"):
        build_data(data_cfg("image_folder", root), CPU)


def test_arrays_npz_images_nhwc_carved(tmp_path):
    x = np.concatenate([images(15, label, 8) for label in range(3)])  # (45, 8, 8, 3) uint8
    y = np.repeat(np.arange(3), 15)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    bundle = build_data(data_cfg("arrays", tmp_path / "data.npz", "data.augment=false"), CPU)
    assert (bundle.info.in_channels, bundle.info.image_size, bundle.info.num_classes) == (3, 8, 3)
    assert sum(bundle.sizes.values()) == 45
    x_train, _ = everything(bundle.calibration)
    assert x_train.shape[1:] == (3, 8, 8)
    assert x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-4


def test_arrays_npy_feature_vectors_with_given_splits(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 10)):
        np.save(tmp_path / f"x_{split}.npy", rng.normal(3.0, 2.0, size=(n, 5)))
        np.save(tmp_path / f"y_{split}.npy", rng.integers(0, 2, size=n))
    bundle = build_data(data_cfg("arrays", tmp_path), CPU)
    assert bundle.info.input_shape == (5,) and bundle.info.num_classes == 2
    assert bundle.sizes == {"train": 36, "val": 4, "test": 10}
    # standardised with the statistics of the 36 training rows (the loader keeps them raw)
    raw_train = bundle.calibration.inputs.double()
    mean, std = raw_train.mean(0), raw_train.std(0, unbiased=False)
    raw_test = torch.from_numpy(np.load(tmp_path / "x_test.npy"))
    x_test, y_test = everything(bundle.test)
    assert torch.allclose(x_test.double(), (raw_test - mean) / std, atol=1e-5)
    assert torch.equal(y_test, torch.from_numpy(np.load(tmp_path / "y_test.npy")))


def test_arrays_errors_name_the_array(tmp_path):
    np.savez(tmp_path / "a.npz", inputs=np.zeros((4, 3)), y=np.zeros(4))
    with pytest.raises(ConfigError, match=r"has no array 'x' \(arrays: inputs, y\)"):
        build_data(data_cfg("arrays", tmp_path / "a.npz"), CPU)
    np.save(tmp_path / "x.npy", np.array([object()] * 3, dtype=object), allow_pickle=True)
    np.save(tmp_path / "y.npy", np.zeros(3))
    with pytest.raises(ConfigError, match="without pickle"):
        build_data(data_cfg("arrays", tmp_path), CPU)


def test_arrays_labels_as_class_names_or_a_column(tmp_path):
    rng = np.random.default_rng(0)
    names = {"train": rng.choice(["dog", "cat", "eel"], 30), "test": np.array(["eel", "cat"] * 5)}
    for split, y in names.items():
        np.save(tmp_path / f"x_{split}.npy", rng.normal(size=(len(y), 4)).astype(np.float32))
        np.save(tmp_path / f"y_{split}.npy", y)
    bundle = build_data(data_cfg("arrays", tmp_path), CPU)
    assert bundle.info.num_classes == 3
    _, y_test = everything(bundle.test)
    assert y_test.tolist() == [2, 0] * 5  # sorted names: cat 0, dog 1, eel 2, in every split
    column = tmp_path / "column.npz"
    np.savez(column, x=rng.normal(size=(30, 4)), y=np.repeat(np.arange(3), 10)[:, None])
    assert build_data(data_cfg("arrays", column), CPU).info.num_classes == 3


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.full((20, 4), np.nan), np.arange(20) % 2, "the inputs hold NaN or infinite values"),
        (np.zeros((20, 4)), np.arange(20) % 2 + 0.5, "not values such as 0.5"),
        (np.zeros((20, 4)), np.eye(20)[:, :2], "have shape (20, 2); give one class per input"),
        (np.zeros((20, 4), dtype=complex), np.arange(20) % 2, "are complex128, not numbers"),
    ],
)
def test_arrays_bad_values_are_one_line(tmp_path, x, y, message):
    np.savez(tmp_path / "bad.npz", x=x, y=y)
    with pytest.raises(ConfigError) as refused:
        build_data(data_cfg("arrays", tmp_path / "bad.npz"), CPU)
    assert message in str(refused.value)


def test_hf_dataset_images_saved_to_disk(tmp_path):
    import datasets
    from PIL import Image

    def split(n, seed):
        rows = {"img": [], "cls": []}
        for label in range(2):
            for array in images(n, label, 8, seed):
                rows["img"].append(Image.fromarray(array))
                rows["cls"].append(["cat", "dog"][label])
        features = datasets.Features({"img": datasets.Image(), "cls": datasets.Value("string")})
        return datasets.Dataset.from_dict(rows, features=features)

    datasets.DatasetDict({"train": split(10, 0), "test": split(3, 1)}).save_to_disk(tmp_path / "d")
    cfg = data_cfg(
        "hf_dataset", tmp_path / "d", "data.options={image_column: img, label_column: cls}"
    )
    bundle = build_data(cfg, CPU)
    assert bundle.info.num_classes == 2 and bundle.sizes["test"] == 6
    assert bundle.sizes["train"] + bundle.sizes["val"] == 20
    with pytest.raises(ConfigError, match=r"has no column 'image' \(columns: img, cls\)"):
        build_data(data_cfg("hf_dataset", tmp_path / "d"), CPU)


def test_hf_dataset_text_column_is_a_language_corpus(tmp_path):
    import datasets

    from prunebench.data.synthetic_stories import generate_stories

    STORIES = generate_stories(60, seed=5)

    datasets.Dataset.from_dict({"story": STORIES}).to_parquet(str(tmp_path / "train.parquet"))
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for s in STORIES for w in s.split()})
    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "[UNK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(
        tmp_path / "tok"
    )
    cfg = load_run_config(
        None,
        ["device=cpu", "data.name=hf_dataset", f"data.root={tmp_path / 'train.parquet'}",
         f"data.tokenizer={tmp_path / 'tok'}", "data.seq_len=8", "model.name=gpt_neo",
         f"data.options={{text_column: story, cache_dir: {tmp_path / 'cache'}}}"],
    )  # fmt: skip
    bundle = build_data(cfg.data, CPU)
    assert bundle.info.task == "causal_lm" and bundle.info.vocab_size == len(vocab)
    x, y = next(iter(bundle.test))
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the next tokens


def test_python_dataset_classification_and_lm(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, "mydata", DATASET_FILE)
    write_module(tmp_path, "mymodel", MODEL_FILE)
    model = "python:mymodel.py:mlp"  # a python model follows the data's task
    cfg = data_cfg("python:mydata.py:make", None, "data.options={n: 80}", model=model)
    bundle = build_data(cfg, CPU)
    assert bundle.info.task == "classification" and bundle.info.num_classes == 3
    assert bundle.info.input_shape == (5,)
    assert bundle.sizes == {"train": 54, "val": 6, "test": 20}
    lm = build_data(data_cfg("python:mydata.py:tokens", None, model=model), CPU)
    assert (lm.info.task, lm.info.seq_len, lm.info.vocab_size) == ("causal_lm", 8, 11)
    with pytest.raises(ConfigError, match=r"data\.options for python:mydata\.py:make"):
        build_data(data_cfg("python:mydata.py:make", None, "data.options={bad: 1}"), CPU)


def test_task_mismatch_is_caught_in_the_config():
    with pytest.raises(ConfigError, match="is a classification model but dataset 'hf_dataset'"):
        load_run_config(
            None, ["data.name=hf_dataset", "data.root=.", "data.options={text_column: t}"]
        )


def test_arrays_group_ids_follow_the_test_examples(tmp_path):
    """options.groups: with given splits G_test as it is; carved, G follows the test indices."""
    rng = np.random.default_rng(1)
    for split, n in (("train", 40), ("test", 12)):
        np.save(tmp_path / f"x_{split}.npy", rng.normal(size=(n, 4)))
        np.save(tmp_path / f"y_{split}.npy", rng.integers(0, 2, size=n))
    np.save(tmp_path / "scene_test.npy", np.array(list("aabbbcccdddd")))
    bundle = build_data(data_cfg("arrays", tmp_path, "data.options={groups: scene}"), CPU)
    assert bundle.test_groups.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3]
    assert build_data(data_cfg("arrays", tmp_path), CPU).test_groups is None
    carved = tmp_path / "all.npz"
    x = np.stack([np.arange(60.0), rng.normal(size=60)], axis=1)  # column 0: the row
    np.savez(carved, x=x, y=np.repeat([0, 1], 30), g=np.arange(60) // 3)
    bundle = build_data(data_cfg("arrays", carved, "data.options={groups: g}"), CPU)
    rows = bundle.test.inputs[:, 0].round().long().numpy()  # the loader keeps inputs raw
    assert len(rows) == bundle.sizes["test"] > 0
    got = bundle.test_groups.numpy()
    same = lambda g: g[:, None] == g[None, :]  # noqa: E731  (the partition, not the labels)
    assert (same(got) == same(rows // 3)).all() and len(set(rows // 3)) > 1
    with pytest.raises(ConfigError, match=r"data.options.groups: .* has no array 'h_test'"):
        build_data(data_cfg("arrays", tmp_path, "data.options={groups: h}"), CPU)


GROUPED_DATASET = """
import torch
from torch.utils.data import TensorDataset


class Grouped(TensorDataset):
    groups = [i // 4 for i in range(20)]  # five patients, four images each


def make():
    g = torch.Generator().manual_seed(0)
    train = TensorDataset(torch.randn(60, 5, generator=g), torch.arange(60) % 3)
    return {"train": train, "test": Grouped(torch.randn(20, 5, generator=g), torch.arange(20) % 3)}
"""


def test_python_dataset_test_groups(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, "grouped", GROUPED_DATASET)
    write_module(tmp_path, "mymodel", MODEL_FILE)
    bundle = build_data(
        data_cfg("python:grouped.py:make", None, model="python:mymodel.py:mlp"), CPU
    )
    assert bundle.test_groups.tolist() == [i // 4 for i in range(20)]
