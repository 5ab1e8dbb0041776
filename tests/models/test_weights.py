"""Local pretrained weights: .pth (weights only), safetensors, timm checkpoints at another image
size, a classifier re-initialised for a new class count, and mismatches named precisely."""

from __future__ import annotations

import collections

import pytest
import torch

from prunebench.config.schema import ModelConfig
from prunebench.data import DataInfo
from prunebench.errors import CheckpointError
from prunebench.models import MODELS
from prunebench.models.weights import load_pretrained
from prunebench.store.checkpoints import save_tensors

CIFAR = DataInfo(task="classification", num_classes=10, in_channels=3, image_size=32)
IMAGENET_LIKE = DataInfo(task="classification", num_classes=1000, in_channels=3, image_size=32)


def resnet(info, seed):
    torch.manual_seed(seed)
    return MODELS.get("resnet18").build(info)


def test_pth_state_dict_loads_and_mismatch_names_key_and_shapes(tmp_path):
    source = resnet(IMAGENET_LIKE, 0)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    target = resnet(IMAGENET_LIKE, 1)
    load_pretrained(target, ModelConfig(name="resnet18", weights=tmp_path / "resnet18.pth"))
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key

    cifar_model = resnet(CIFAR, 2)
    with pytest.raises(
        CheckpointError,
        match=r"'fc\.weight' has shape \(1000, 512\), the model expects \(10, 512\)",
    ):
        load_pretrained(
            cifar_model, ModelConfig(name="resnet18", weights=tmp_path / "resnet18.pth")
        )


def test_reset_classifier_keeps_everything_but_the_classifier(tmp_path):
    source = resnet(IMAGENET_LIKE, 0)
    save_tensors(tmp_path / "r.safetensors", source.state_dict(), {})
    model = resnet(CIFAR, 3)
    fresh_fc = model.fc.weight.detach().clone()
    cfg = ModelConfig(name="resnet18", weights=tmp_path / "r.safetensors", reset_classifier=True)
    load_pretrained(model, cfg)
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(model.state_dict()[key], value), key
    assert torch.equal(model.fc.weight, fresh_fc)


class Payload:
    """Unpickling this would import and run test code: weights_only must refuse it."""


def test_pickled_code_in_a_pth_is_refused(tmp_path):
    torch.save({"conv1.weight": Payload()}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="weights-only"):
        load_pretrained(
            resnet(CIFAR, 0), ModelConfig(name="resnet18", weights=tmp_path / "bad.pth")
        )
    torch.save({"conv1.weight": collections.Counter(a=1)}, tmp_path / "odd.pth")  # allowed type
    with pytest.raises(CheckpointError, match=r"'conv1\.weight' is not a tensor"):
        load_pretrained(
            resnet(CIFAR, 0), ModelConfig(name="resnet18", weights=tmp_path / "odd.pth")
        )


def test_vit_checkpoint_is_resampled_to_another_image_size(tmp_path):
    spec = MODELS.get("vit_small_patch16_224")
    options = {"patch_size": 8, "depth": 1, "embed_dim": 32, "num_heads": 2}
    torch.manual_seed(0)
    small = spec.build(CIFAR, **options)  # 4x4 patches
    save_tensors(tmp_path / "vit.safetensors", small.state_dict(), {})
    big_info = DataInfo(task="classification", num_classes=10, in_channels=3, image_size=64)
    big = spec.build(big_info, **options)  # 8x8 patches
    load_pretrained(
        big,
        ModelConfig(
            name="vit_small_patch16_224", weights=tmp_path / "vit.safetensors", options=options
        ),
    )
    assert big.pos_embed.shape == (1, 65, 32)
    assert torch.equal(big.pos_embed[:, :1], small.pos_embed[:, :1])  # class token position
    for key, value in small.state_dict().items():
        if key != "pos_embed":
            assert torch.equal(big.state_dict()[key], value), key
    assert big(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_torchvision_source_takes_imagenet_weights_with_its_conv_classifier_reset(tmp_path):
    """torchvision:squeezenet1_1 with a 1000-class state dict on 10 classes: the classifier
    (a Conv2d, found from the output) keeps its fresh weights, everything else is loaded."""
    from prunebench.models.build import build_model

    torch.manual_seed(0)
    imagenet = build_model(ModelConfig(name="torchvision:squeezenet1_1"), IMAGENET_LIKE)
    torch.save(imagenet.state_dict(), tmp_path / "squeezenet1_1.pth")
    cfg = ModelConfig(
        name="torchvision:squeezenet1_1",
        weights=tmp_path / "squeezenet1_1.pth",
        reset_classifier=True,
    )
    model = build_model(cfg, CIFAR)
    fresh = model.classifier[1].weight.detach().clone()
    load_pretrained(model, cfg, CIFAR)
    assert torch.equal(model.classifier[1].weight, fresh)
    for key, value in imagenet.state_dict().items():
        if not key.startswith("classifier.1."):
            assert torch.equal(model.state_dict()[key], value), key
