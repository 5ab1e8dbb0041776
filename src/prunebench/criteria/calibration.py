"""What data-dependent criteria read from calibration batches: gradients and input norms.

Everything runs with the model in eval mode (BatchNorm uses its running statistics, dropout is
off), so a sample's gradient does not depend on which other samples share its batch, and the
model's own `.grad` fields are left as they were.

Memory: statistics are collected layer by layer. Gradients are added into the sums by a hook on
each parameter as backward reaches it and dropped at once (never all of a model's gradients at
the same time); input norms are reduced inside each layer's forward hook, about FEATURE_CHUNK
float64 elements at a time (a convolution's im2col rows unfolded for a few images at a time), so
their extra memory does not grow with the batch. The sums are float64 for models up to
EXACT_SUMS scored weights and in the weights' own dtype above it. At most SUM_BUDGET weights'
sums exist at once (a model above MAX_PASSES x SUM_BUDGET: 1/MAX_PASSES of its scored weights):
a larger model's parameters are taken in chunks (in model order), one pass
over the calibration batches each, in which only the chunk's parameters require gradients (the
layers below it record nothing for backward); each parameter's result is handed over (and
reduced by its consumer) as its chunk completes. Same numbers, bit for bit, as one pass: a
parameter's gradient does not depend on which others are collected with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from prunebench.data.base import to_device
from prunebench.errors import PrunebenchError
from prunebench.measure import eval_mode

if TYPE_CHECKING:
    from prunebench.data.base import Batch
    from prunebench.tasks import Task

# Per-sample gradients are computed for this many weights at once (vmap chunk x params); a model
# with more scored weights than this takes one backward per sample instead.
VMAP_BUDGET = 50_000_000
EXACT_SUMS = 50_000_000  # scored weights up to which the sums are float64
SUM_BUDGET = 64_000_000  # weights whose sums are held at once (more: a pass per chunk) ...
MAX_PASSES = 4  # ... unless that takes more passes: then 1/MAX_PASSES of the weights each
FEATURE_CHUNK = 1 << 22  # input elements squared in float64 at once (wanda's input norms)


def require_data(batches: Iterable[Batch] | None, task: Task | None, who: str) -> None:
    if batches is None or task is None:
        raise PrunebenchError(f"criterion '{who}' needs calibration batches and a task")


def _device(params: Mapping[str, nn.Parameter]) -> torch.device:
    return next(iter(params.values())).device


def _weights(params: Mapping[str, nn.Parameter]) -> int:
    return sum(p.numel() for p in params.values())


def chunks(params: Mapping[str, nn.Parameter], budget: int) -> list[dict[str, nn.Parameter]]:
    """The parameters in their order, cut into runs of at most `budget` weights each (a larger
    parameter is a run of its own)."""
    out: list[dict[str, nn.Parameter]] = []
    size = budget
    for name, param in params.items():
        if size + param.numel() > budget:
            out.append({})
            size = 0
        out[-1][name] = param
        size += param.numel()
    return out


@contextmanager
def grad_only_for(model: nn.Module, params: Mapping[str, nn.Parameter]) -> Iterator[None]:
    """Only `params` require gradients inside (restored after): autograd then records nothing
    before the first of them, so backward keeps no activations of the layers below."""
    wanted = set(params.values())
    saved = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for param, _ in saved:
            param.requires_grad_(param in wanted)
        yield
    finally:
        for param, flag in saved:
            param.requires_grad_(flag)


AddBatch = Callable[[Mapping[str, nn.Parameter], torch.Tensor, torch.Tensor, dict], None]


def _sample_average(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Iterable[Batch],
    add_batch: AddBatch,
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, (1/N) x the sums that `add_batch(chunk, inputs, targets, sums)` adds per batch
    over all N calibration samples), in eval mode, parameter by parameter. At most SUM_BUDGET
    weights' sums (or 1/MAX_PASSES of them) exist at once: a larger model's parameters are
    taken in chunks, each a pass over the calibration batches (same numbers, more passes)."""
    weights = _weights(params)
    exact = weights <= EXACT_SUMS
    budget = max(SUM_BUDGET, -(-weights // MAX_PASSES))
    parts = chunks(params, budget)
    if len(parts) > 1 and not isinstance(batches, Sequence):
        batches = list(batches)  # read once per chunk
    device = _device(params)
    for part in parts:
        sums = {
            n: torch.zeros_like(p, dtype=torch.float64 if exact else None) for n, p in part.items()
        }
        count = 0
        with eval_mode(model), grad_only_for(model, part):
            for batch in batches:
                inputs, targets = to_device(batch, device)
                add_batch(part, inputs, targets, sums)
                count += len(targets)
        if count == 0:
            raise PrunebenchError("the calibration split gave no samples")
        for name in list(sums):
            yield name, _mean(sums.pop(name), count, params[name].dtype)


def _mean(total: torch.Tensor, count: int, dtype: torch.dtype) -> torch.Tensor:
    """total / count in `dtype`, in place where the sum already has that dtype."""
    return total.div_(count) if total.dtype == dtype else (total / count).to(dtype)


def backward_into(
    loss: torch.Tensor, params: Mapping[str, nn.Parameter], add: Callable[[str, torch.Tensor], None]
) -> None:
    """Backward of `loss` that hands each parameter's gradient to `add(name, grad)` as soon as
    it is complete and frees it: one parameter's gradient at a time, `.grad` left as it was.
    A loss that none of `params` reaches adds nothing (their gradients are zero)."""
    if not loss.requires_grad:
        return
    by_param: dict[nn.Parameter, list[str]] = {}
    for name, param in params.items():
        by_param.setdefault(param, []).append(name)
    saved = {param: param.grad for param in by_param}

    def hook(param: nn.Parameter) -> None:
        for name in by_param[param]:
            add(name, param.grad)
        param.grad = None

    handles = []
    try:
        for param in by_param:
            param.grad = None
            handles.append(param.register_post_accumulate_grad_hook(hook))
        torch.autograd.backward(loss, inputs=list(by_param))
    finally:
        for handle in handles:
            handle.remove()
        for param, grad in saved.items():
            param.grad = grad


def mean_gradients(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Iterable[Batch],
    task: Task,
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, gradient of the mean loss over all calibration samples), parameter by parameter
    (independent of batching)."""

    def add_batch(part, inputs, targets, sums):
        loss = task.loss(model, (inputs, targets)) * len(targets)
        backward_into(loss, part, lambda name, g: sums[name].add_(g))

    return _sample_average(model, params, batches, add_batch)


class _Bound:
    """Calls `model` with some parameters replaced (for torch.func transforms)."""

    def __init__(self, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
        self.model = model
        self.tensors = tensors

    def __call__(self, *args, **kwargs):
        from torch.func import functional_call

        return functional_call(self.model, self.tensors, args, kwargs, strict=False)


def _per_sample_vmap(model, params, task, inputs, targets, sums) -> None:
    from torch.func import grad, vmap

    names = list(params)
    detached = {k: params[k].detach() for k in names}

    def loss_one(p, x, y):
        return task.loss(_Bound(model, p), (x.unsqueeze(0), y.unsqueeze(0)))

    numel = _weights(detached)
    chunk = max(1, min(64, VMAP_BUDGET // max(numel, 1)))
    for start in range(0, len(targets), chunk):
        grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(
            detached, inputs[start : start + chunk], targets[start : start + chunk]
        )
        for k in names:
            sums[k] += grads[k].double().pow(2).sum(0)


def _per_sample_loop(model, params, task, inputs, targets, sums) -> None:
    for i in range(len(targets)):
        loss = task.loss(model, (inputs[i : i + 1], targets[i : i + 1]))
        backward_into(loss, params, lambda name, g: sums[name].addcmul_(g, g))


def mean_squared_sample_gradients(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Iterable[Batch],
    task: Task,
    vectorize: bool = True,
) -> Iterator[tuple[str, torch.Tensor]]:
    """(1/N) sum_i g_i^2 with g_i the gradient of sample i's own loss: the empirical Fisher
    diagonal, i.e. the diagonal Hessian estimate of OBD. Uses torch.func.vmap when the model
    allows it, else one backward per sample (same result)."""
    use_vmap = vectorize and _weights(params) <= VMAP_BUDGET

    def add_batch(chunk, inputs, targets, sums):
        nonlocal use_vmap
        if use_vmap:
            part = {n: torch.zeros_like(s) for n, s in sums.items()}  # discarded if vmap fails
            try:
                _per_sample_vmap(model, chunk, task, inputs, targets, part)
            except (RuntimeError, NotImplementedError, TypeError):
                use_vmap = False  # an op without a batching rule: one backward per sample now
            else:
                for n in sums:
                    sums[n] += part[n]
                return
        _per_sample_loop(model, chunk, task, inputs, targets, sums)  # straight into the sums

    return _sample_average(model, params, batches, add_batch)


def _conv_padding(module: nn.Conv2d) -> tuple[int, int]:
    if isinstance(module.padding, str):
        if module.padding == "valid":
            return (0, 0)
        pads = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size, strict=True)]
        if any(p % 2 for p in pads):
            raise PrunebenchError("wanda: asymmetric 'same' padding is not supported")
        return (pads[0] // 2, pads[1] // 2)
    return module.padding  # type: ignore[return-value]


def _feature_squares(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Sum over rows of x^2 per input feature of a Linear, or per (channel, kernel offset) of a
    Conv2d (its im2col rows): the features that each weight multiplies. In float64, a chunk of
    at most about FEATURE_CHUNK elements at a time."""
    x = x.detach()
    if isinstance(module, nn.Linear):
        rows = x.reshape(-1, module.in_features)
        chunks = rows.split(max(1, FEATURE_CHUNK // module.in_features))
        return sum(chunk.to(torch.float64, copy=True).square_().sum(0) for chunk in chunks)
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise PrunebenchError("wanda: only zero-padded convolutions are supported")
        per_image = module.weight[0].numel() * module.groups * x[0, 0].numel()  # ~ its cols
        total = 0
        for images in x.split(max(1, FEATURE_CHUNK // max(per_image, 1))):
            cols = F.unfold(
                images,
                module.kernel_size,
                dilation=module.dilation,
                padding=_conv_padding(module),
                stride=module.stride,
            )
            total = total + cols.double().square_().sum(dim=(0, 2))  # cols: a fresh tensor
        return total
    raise PrunebenchError(f"wanda scores Linear and Conv2d layers, not {type(module).__name__}")


@torch.no_grad()
def input_feature_norms(
    model: nn.Module,
    modules: dict[str, nn.Module],
    batches: Iterable[Batch],
    task: Task | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """L2 norm over all calibration rows of each input feature of the given layers."""
    sums: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in modules.items():

        def hook(mod, args, output, name=name):
            squares = _feature_squares(mod, args[0])
            sums[name] = sums[name] + squares if name in sums else squares

        handles.append(module.register_forward_hook(hook))
    count = 0
    device = next(model.parameters()).device
    try:
        with eval_mode(model):
            for batch in batches:
                inputs, targets = to_device(batch, device)
                task.forward(model, inputs) if task is not None else model(inputs)
                count += len(targets)
    finally:
        for handle in handles:
            handle.remove()
    if count == 0:
        raise PrunebenchError("the calibration split gave no samples")
    missing = [n for n in modules if n not in sums]
    if missing:
        raise PrunebenchError(f"wanda: layer '{missing[0]}' saw no input during calibration")
    return {n: s.sqrt() for n, s in sums.items()}, count
