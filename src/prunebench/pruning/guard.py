"""A time and memory guard around Torch-Pruning's graph building, and errors that name the cause.

Torch-Pruning 1.6.1 can loop without end on some graphs (torchvision's swin_t grew past 14 GB
in 12 minutes while fixing its dependency graph) and fails far from the cause on others
(shufflenet_v2's channel shuffle is a reshape whose index mapping divides by zero; the last
traced layer is the classifier). `graph_budget` stops the work once it has used
`seconds` of CPU time or grown the process by `memory_mb` (checked twice a CPU second by a
SIGPROF timer on the main thread, by a profile hook elsewhere); `culprit` reads the
Torch-Pruning node being processed from the traceback and names the nn.Module that holds it.
Limits: PRUNEBENCH_GRAPH_SECONDS (default 45) and PRUNEBENCH_GRAPH_MEMORY_MB (default 2048).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from torch import nn

from prunebench.errors import PrunebenchError
from prunebench.pruning.tp_adapter import ChannelGraph, nearest_layer, node_label, traced_node

CHECK_EVERY = 0.5  # CPU seconds between checks at most (timer) / 20000 profile events (hook)
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class GraphBudgetExceeded(BaseException):
    """Graph building used more time or memory than allowed. A BaseException, as
    KeyboardInterrupt, so that the `except Exception` clauses of the code it interrupts (Torch-
    Pruning retries a failed trace) do not swallow it."""


def limits() -> tuple[float, float]:
    seconds = float(os.environ.get("PRUNEBENCH_GRAPH_SECONDS", 45))
    memory = float(os.environ.get("PRUNEBENCH_GRAPH_MEMORY_MB", 2048))
    return seconds, memory


def rss_mb() -> float:
    """Resident memory of this process in MB (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        return 0.0


@contextlib.contextmanager
def graph_budget(seconds: float | None = None, memory_mb: float | None = None) -> Iterator[None]:
    """Raise GraphBudgetExceeded inside the block once it exceeds its CPU time or memory."""
    default_seconds, default_memory = limits()
    seconds = default_seconds if seconds is None else seconds
    memory_mb = default_memory if memory_mb is None else memory_mb
    start, base = time.process_time(), rss_mb()
    exceeded: list[str] = []

    def check() -> None:
        if time.process_time() - start > seconds:
            exceeded.append(f"it used more than {seconds:g} s of CPU time")
        elif rss_mb() - base > memory_mb:
            exceeded.append(f"its memory grew by more than {memory_mb:g} MB")
        if exceeded:
            raise GraphBudgetExceeded(exceeded[0])

    on_main = threading.current_thread() is threading.main_thread()
    if on_main and hasattr(signal, "setitimer"):
        previous = signal.signal(signal.SIGPROF, lambda signum, frame: check())
        every = min(CHECK_EVERY, max(seconds / 10, 0.005))
        signal.setitimer(signal.ITIMER_PROF, every, every)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            signal.signal(signal.SIGPROF, previous)
        if exceeded:  # raised inside, but caught by the code it interrupted
            raise GraphBudgetExceeded(exceeded[0])
        return
    events = 0

    def hook(frame, event, arg) -> None:
        nonlocal events
        events += 1
        if events % 20000 == 0:
            check()

    previous_hook = sys.getprofile()
    sys.setprofile(hook)
    try:
        yield
    finally:
        sys.setprofile(previous_hook)
    if exceeded:
        raise GraphBudgetExceeded(exceeded[0])


def owner(model: nn.Module, name: str) -> tuple[str, str]:
    """(name, type) of the nearest ancestor of layer `name` that is not a plain container:
    the block whose forward does what Torch-Pruning cannot follow."""
    modules = dict(model.named_modules())
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:end])
        module = modules.get(candidate)
        if module is not None and not isinstance(module, CONTAINERS):
            return candidate, type(module).__name__
    return name, type(modules[name]).__name__


HINTS = {"Reshape": "a reshape of the channels (a channel shuffle, a window partition, ...)"}


def culprit(model: nn.Module, tb: TracebackType | None) -> str | None:
    """'TYPE 'BLOCK' at OPERATION after layer LAYER' for the node `tb` was processing."""
    node = traced_node(tb)
    if node is None:
        return None
    names = {m: n for n, m in model.named_modules()}
    layer = nearest_layer(node, names)
    if layer is None:
        return f"operation {node.name}"
    block, kind = owner(model, names[layer])
    if node.module in names:
        return f"{kind} '{block}' (layer '{names[layer]}')"
    op = node_label(node)
    return f"{kind} '{block}', at {HINTS.get(op, op)} after layer '{names[layer]}'"


def graph_error(
    model: nn.Module, model_name: str, exc: BaseException, traced_last: str | None
) -> PrunebenchError:
    """One line: what went wrong in Torch-Pruning's graph building, the module that holds the
    operation it was processing, and the way out."""
    where = culprit(model, exc.__traceback__)
    if where is None and traced_last:
        where = f"the graph (its trace ended at layer '{traced_last}')"
    cause = str(exc) if isinstance(exc, GraphBudgetExceeded) else f"{type(exc).__name__}: {exc}"
    return PrunebenchError(
        f"model '{model_name}': Torch-Pruning cannot build its dependency graph ({cause}) in "
        f"{where or 'the graph'}; prune it with prune.structure=unstructured"
    )


def build_graph(
    model: nn.Module,
    example_inputs: Any,
    extra: dict[str, Any],
    ignored: list[nn.Module],
    model_name: str,
) -> ChannelGraph:
    """The channel graph, built under the time and memory guard; errors name the model and
    the module Torch-Pruning was processing."""
    last: list[str] = []
    names = {m: n for n, m in model.named_modules()}
    handles = [
        m.register_forward_pre_hook(lambda mod, args: last.append(names.get(mod, "?")))
        for m in model.modules()
    ]
    was_training = model.training
    try:
        with graph_budget():
            graph = ChannelGraph(model, example_inputs, extra, ignored)
    except PrunebenchError:
        raise
    except (Exception, GraphBudgetExceeded) as exc:
        raise graph_error(model, model_name, exc, last[-1] if last else None) from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return graph
