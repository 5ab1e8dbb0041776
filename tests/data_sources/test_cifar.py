"""CIFAR-10/100 read from small files in torchvision's on-disk format (pickled batches)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from torchvision import transforms as T

from prunebench.config.loading import load_run_config
from prunebench.data import DATASETS
from prunebench.data.transforms import CIFAR10_MEAN, CIFAR10_STD
from prunebench.errors import ConfigError, PrunebenchError


def batch(n, seed, label_key="labels", classes=10, bytes_keys=False):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(i % classes) for i in range(n)]
    d = {
        "batch_label": "training batch",
        label_key: labels,
        "data": data,
        "filenames": [f"img_{seed}_{i}.png" for i in range(n)],
    }
    if bytes_keys:
        d = {k.encode(): v for k, v in d.items()}
    return d


def write_cifar10(root, per_batch=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        # protocol 2 as in the real (Python 2) files; one batch with bytes keys (Python 3 style)
        payload = batch(per_batch, i, bytes_keys=(i == 3))
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(payload, protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(per_batch, 99), protocol=5))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list("abcdefghij")}))
    return folder


def config(root, name="cifar10", *extra):
    return load_run_config(
        None,
        [
            "device=cpu",
            f"data.name={name}",
            f"data.root={root}",
            "data.val_fraction=0.2",
            "data.batch_size=16",
            "data.eval_batch_size=7",
            *extra,
        ],
    ).data


def build(cfg):
    return DATASETS.get(cfg.name).build(cfg, torch.device("cpu"))


def test_cifar10_splits_and_test_batch_match_the_files(tmp_path):
    folder = write_cifar10(tmp_path)
    data = build(config(tmp_path))
    assert data.sizes == {"train": 80, "val": 20, "test": 20}
    assert data.info.num_classes == 10 and data.info.image_size == 32
    # the val split is stratified: 2 images of each class out of 100
    val_labels = torch.cat([y for _, y in data.val])
    assert torch.bincount(val_labels, minlength=10).tolist() == [2] * 10

    raw = pickle.loads((folder / "test_batch").read_bytes())
    reference = T.Compose([T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    test_x = torch.cat([x for x, _ in data.test])
    test_y = torch.cat([y for _, y in data.test])
    assert test_y.tolist() == raw["labels"]
    for i in (0, 7, 19):
        hwc = raw["data"][i].reshape(3, 32, 32).transpose(1, 2, 0)
        torch.testing.assert_close(test_x[i], reference(hwc), atol=1e-6, rtol=1e-6)


def test_train_and_val_are_disjoint_and_cover_the_training_batches(tmp_path):
    folder = write_cifar10(tmp_path)
    data = build(config(tmp_path, "cifar10", "data.augment=false"))
    originals = {}
    for i in range(1, 6):
        raw = pickle.loads((folder / f"data_batch_{i}").read_bytes())
        raw = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
        for row in raw["data"]:
            originals[row.tobytes()] = True
    mean = torch.tensor(CIFAR10_MEAN).view(3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(3, 1, 1)

    def raw_rows(loader):
        rows = []
        for x, _ in loader:
            u8 = ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
            rows += [r.numpy().reshape(-1).tobytes() for r in u8]
        return rows

    train, val = raw_rows(data.calibration), raw_rows(data.val)
    assert set(train).isdisjoint(val)
    assert set(train) | set(val) == set(originals)


def test_augmented_train_batches_are_crops_and_flips(tmp_path):
    write_cifar10(tmp_path)
    data = build(config(tmp_path))
    torch.manual_seed(0)
    x, _ = next(iter(data.train))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
    torch.manual_seed(0)
    plain = next(iter(data.calibration))[0]
    assert not torch.equal(x, plain)  # same order (same seed), different pixels


def test_cifar100_fine_labels_and_resize(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(pickle.dumps(batch(400, 1, "fine_labels", 100), protocol=2))
    (folder / "test").write_bytes(pickle.dumps(batch(100, 2, "fine_labels", 100), protocol=2))
    data = build(config(folder, "cifar100", "data.image_size=64", "data.val_fraction=0.25"))
    assert data.info.num_classes == 100 and data.info.image_size == 64
    x, y = next(iter(data.test))
    assert x.shape == (7, 3, 64, 64)
    assert y.tolist() == list(range(7))


def test_a_batch_file_with_code_is_refused(tmp_path):
    folder = write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(PrunebenchError, match=r"refusing to load 'posix\.system'"):
        build(config(tmp_path))


def test_missing_dataset_folder_names_the_key_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.root: no 'cifar-10-batches-py'.*data.download"):
        build(config(tmp_path))
    with pytest.raises(ConfigError, match=r"data\.root"):
        load_run_config(None, ["data.name=cifar10"])


def test_download_only_when_asked(tmp_path, monkeypatch):
    calls = []
    (tmp_path / "dl").mkdir()

    def fake_download(url, root, filename=None, md5=None):
        calls.append((url, md5))
        write_cifar10(tmp_path / "dl")
        assert root == str(tmp_path / "dl")

    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive", fake_download)
    data = build(config(tmp_path / "dl", "cifar10", "data.download=true"))
    assert len(calls) == 1 and calls[0][0].endswith("cifar-10-python.tar.gz")
    assert data.sizes["test"] == 20
