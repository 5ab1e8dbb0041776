"""The fast paths: channels_last convnets on the CPU and CUDA keep parameter identities; bf16
autocast only on CUDA; CPU training is deterministic; the CUDA logic is run here on CPU tensors."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from prunebench.accel import (
    AUTO_COMPILE_MIN_EPOCHS,
    Execution,
    autocast,
    optimizer_options,
    prepare_inputs,
    prepare_model,
    should_compile,
)
from prunebench.config.fit_settings import FitSettings
from prunebench.config.identity import base_id, run_id
from prunebench.data.base import DataBundle
from prunebench.data.digits import build_digits
from prunebench.data.info import DataInfo
from prunebench.engine.finetune import fit
from prunebench.engine.plan import plan_steps
from prunebench.engine.pretrain import Dense
from prunebench.engine.step import RunContext
from prunebench.engine.training import make_optimizer, train_epoch
from prunebench.errors import ConfigError
from prunebench.models.small import SmallCNN
from prunebench.progress import Progress
from prunebench.pruning.masks import MaskSet
from prunebench.tasks import make_task

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


class HostSyncs(TorchFunctionMode):
    """Records every call that copies a tensor's value to the host (each one waits for the GPU)."""

    SYNCS = frozenset({"item", "tolist", "__float__", "__int__", "__bool__", "cpu", "numpy"})

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self.SYNCS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


def batches(n=5, size=8):
    torch.manual_seed(0)
    return [(torch.randn(size, 1, 8, 8), torch.randint(0, 10, (size,))) for _ in range(n)]


def test_evaluation_and_a_training_epoch_copy_to_the_host_once():
    """Metric sums and the loss stay on the device: one transfer per evaluation and per epoch,
    however many batches (on CUDA each transfer waits for the GPU)."""
    model = SmallCNN(1, 10, width=4)
    task = make_task("classification")
    opt = make_optimizer(model.parameters(), "sgd", 0.1, 0.9, 0.0)
    with HostSyncs() as evaluation:
        metrics = task.evaluate(model, batches(), CPU)
    with HostSyncs() as epoch:
        train_epoch(model, batches(), task, opt, CPU)
    assert evaluation.calls == ["tolist"] and epoch.calls == ["tolist"]
    assert set(metrics) == {"loss", "top1", "top5"}


def test_metrics_equal_the_per_sample_definition():
    model = SmallCNN(1, 10, width=4).eval()
    data = batches(3, 7)
    got = make_task("classification").evaluate(model, data, CPU)
    x, y = torch.cat([b[0] for b in data]), torch.cat([b[1] for b in data])
    with torch.no_grad():
        out = model(x)
    assert got["top1"] == (out.argmax(1) == y).double().mean().item()
    assert got["loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-6)


def test_compile_policy():
    cuda = torch.device("cuda")
    few, many = AUTO_COMPILE_MIN_EPOCHS - 1, AUTO_COMPILE_MIN_EPOCHS
    assert not should_compile("auto", CPU, 1000)  # the CPU stays eager unless asked
    assert not should_compile("auto", cuda, few)  # short phases do not repay compiling
    assert should_compile("auto", cuda, many)
    assert should_compile(True, CPU, 1) and not should_compile(False, cuda, 1000)


def test_fused_optimizers_on_cuda_only():
    assert optimizer_options(torch.device("cuda")) == {"fused": True}
    assert optimizer_options(CPU) == {}
    model = SmallCNN(1, 10, width=4)
    for name in ("sgd", "adamw"):
        assert not make_optimizer(model.parameters(), name, 0.1, 0.9, 0.0).defaults["fused"]


def test_default_execution_is_the_model_itself():
    model = SmallCNN(1, 10, width=4)
    assert Execution().modules(model, CPU) == (model, model)


def test_a_compiled_fit_computes_what_the_eager_fit_does():
    """The compile path's plumbing (graph capture, weights left in the module, best-epoch copies,
    masks on the real parameters) with the eager backend: the same arithmetic, so on the CPU the
    same bits. Inductor's kernels would round differently."""
    settings = FitSettings("sgd", 0.1, 0.9, 0.0, max_epochs=3, patience=1)
    data = DataBundle(DataInfo("classification", 10, 1, 8), *[batches(3)] * 4, sizes={})

    def fitted(execution):
        torch.manual_seed(0)
        model = SmallCNN(1, 10, width=4)
        masks = MaskSet(model, ["classifier.weight"])
        masks.set({"classifier.weight": torch.rand(10, 16) > 0.5})
        masks.apply()
        result = fit(
            model, data, make_task("classification"), settings, CPU, masks, None, execution
        )
        return [r.val_loss for r in result.history], model.state_dict()

    eager_losses, eager_state = fitted(None)
    compiled_losses, compiled_state = fitted(Execution(compile=True, backend="eager"))
    assert compiled_losses == eager_losses
    assert list(compiled_state) == list(eager_state)  # no `_orig_mod.` prefixes
    assert all(torch.equal(compiled_state[k], eager_state[k]) for k in eager_state)
    assert (compiled_state["classifier.weight"] == 0).sum() > 0  # masks held through compile


def test_execution_settings_are_not_part_of_any_id(tiny):
    """`train.compile` changes how the arithmetic runs, not the experiment: a step computed
    eagerly is resumed and reused by a compiled run, as one computed on another device is."""
    configs = [tiny(f"train.compile={v}") for v in ("auto", "true", "false")]
    assert len({run_id(c) for c in configs}) == 1
    assert len({base_id(c) for c in configs}) == 1
    assert len({tuple(s.key for s in plan_steps(c, base_id(c))) for c in configs}) == 1
    with pytest.raises(ConfigError, match=r"train\.compile"):
        tiny("train.compile=sometimes")


def test_a_run_compiles_the_phases_its_setting_asks_for(tiny):
    def execution(setting):
        cfg = tiny(f"train.compile={setting}")
        data = build_digits(cfg.data, CPU)
        dense = Dense(SmallCNN(1, 10, width=8), {}, base_id(cfg), reused=False)
        ctx = RunContext(cfg, data, dense, Progress())
        return ctx.execution(FitSettings("sgd", 0.1, 0.9, 0.0, max_epochs=50, patience=20))

    assert execution("true").compile and execution("true").distribute is None
    assert not execution("auto").compile  # the CPU stays eager
    assert not execution("false").compile
