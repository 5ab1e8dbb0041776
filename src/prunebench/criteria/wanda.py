"""Wanda (Sun et al. 2023): |W_ij| * ||X_j||_2, the weight times the norm of its input feature.

The norm runs over every calibration row that feeds the layer (samples x tokens for Linear
layers; samples x positions of the im2col matrix for Conv2d, where a feature is an input
channel at one kernel offset). Biases, if prunable, are scored by |b|. Unstructured only: a
channel-group sum of Wanda scores has no meaning of its own.
"""

from __future__ import annotations

from prunebench.criteria.base import Criterion
from prunebench.criteria.calibration import input_feature_norms, require_data
from prunebench.errors import PrunebenchError


def _owner(name: str) -> tuple[str, str]:
    module, _, pname = name.rpartition(".")
    return module, pname


class Wanda(Criterion):
    name = "wanda"
    needs_data = True
    structured = False

    def scores_each(self, model, params, batches=None, task=None):
        require_data(batches, task, self.name)
        modules = dict(model.named_modules())
        layers = {}
        for name in params:
            module, pname = _owner(name)
            if pname == "weight":
                layers[module] = modules[module]
            elif pname != "bias":
                raise PrunebenchError(f"wanda cannot score parameter '{name}'")
        norms, _ = input_feature_norms(model, layers, batches, task)
        for name, p in params.items():
            module, pname = _owner(name)
            w = p.detach().abs()
            if pname == "bias":
                yield name, w
                continue
            layer = layers[module]
            norm = norms[module].to(w.dtype)
            if w.dim() == 2:  # Linear: (out, in) * (in,)
                yield name, w * norm
            else:  # Conv2d: (out, in/groups, kh, kw); norm is (in * kh * kw,)
                groups = layer.groups
                per_group = norm.reshape(groups, *w.shape[1:])
                out_group = per_group.repeat_interleave(w.shape[0] // groups, dim=0)
                yield name, w * out_group
