"""The fast paths: channels_last convnets on the CPU and CUDA keep parameter identities; bf16
autocast only on CUDA; CPU training is deterministic."""

from __future__ import annotations

import contextlib
import warnings

import torch

from prunebench.accel import autocast, prepare_inputs, prepare_model
from prunebench.models.small import SmallCNN
from prunebench.tasks import make_task
from prunebench.training import make_optimizer, train_epoch

CPU = torch.device("cpu")


def test_cpu_runs_float32_convnets_in_channels_last():
    model = SmallCNN(3, 10, width=4)
    before = [id(p) for p in model.parameters()]
    x = torch.randn(2, 3, 8, 8)
    assert isinstance(autocast(CPU), contextlib.nullcontext)
    assert prepare_inputs(x).is_contiguous(memory_format=torch.channels_last)
    tokens = torch.zeros(2, 5, dtype=torch.long)
    assert prepare_inputs(tokens) is tokens  # only image batches
    prepare_model(model, CPU)
    assert [id(p) for p in model.parameters()] == before
    conv = model.features[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    linear = torch.nn.Sequential(torch.nn.Linear(4, 2))
    prepare_model(linear, CPU)
    assert linear[0].weight.is_contiguous()


def test_cuda_settings_without_a_gpu():
    """channels_last keeps the Parameter objects (optimizers and masks hold them); autocast is
    bf16. Both are checked on CPU tensors: the functions look only at the device type."""
    model = SmallCNN(3, 10, width=4)
    before = [id(p) for p in model.parameters()]
    prepare_model(model, torch.device("cuda"))
    assert [id(p) for p in model.parameters()] == before
    conv = model.features[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" on this machine
        ctx = autocast(torch.device("cuda"))
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16


def test_cpu_training_is_deterministic():
    def one_epoch():
        torch.manual_seed(0)
        model = SmallCNN(1, 10, width=4)
        x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
        batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
        opt = make_optimizer(model.parameters(), "sgd", 0.1, 0.9, 5e-4)
        loss = train_epoch(model, batches, make_task("classification"), opt, CPU)
        return loss, [p.detach().clone() for p in model.parameters()]

    (loss_a, params_a), (loss_b, params_b) = one_epoch(), one_epoch()
    assert loss_a == loss_b
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b, strict=True))


def test_evaluating_first_then_training_a_fresh_convnet():
    """A step evaluates the freshly pruned model before fine-tuning it: the memory-format
    conversion must not happen in inference mode (its weights could not be trained then)."""
    torch.manual_seed(0)
    model = SmallCNN(1, 10, width=4)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    task = make_task("classification")
    task.evaluate(model, [(x, y)], CPU)
    assert not any(p.is_inference() for p in model.parameters())
    opt = make_optimizer(model.parameters(), "sgd", 0.1, 0.9, 5e-4)
    assert train_epoch(model, [(x, y)], task, opt, CPU) > 0
