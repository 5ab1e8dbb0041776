"""Per-layer channel-ratio presets for structured pruning (paper appendix D.1, table 2).

A preset maps module-name prefixes to channel ratios; a channel group takes the ratio of the
longest prefix matching its root layer (groups no prefix matches are not pruned). The ratios
give the DISTRIBUTION of pruning over the layers: at a cumulative target t a group's ratio is
t * r / r_mean, where r_mean is the channel-weighted mean preset ratio of the scope, so t stays
the fraction of the scope's original channels (as for every other scope) and the preset's own
ratios are met exactly at t = r_mean, its "native target" (recorded in the run's description).
"""

from __future__ import annotations

from dataclasses import dataclass

from prunebench.registry import Registry


@dataclass(frozen=True)
class LayerPreset:
    ratios: dict[str, float]
    model: str = ""  # the model the prefixes were written for
    description: str = ""
    # The parameter pruning ratio the paper reports for this preset (for comparison).
    paper_param_ratio: float | None = None


PRESETS: Registry[LayerPreset] = Registry("layer preset")


def _table2(conv1: float, l1: float, l2: float, l3: float, l4: float) -> dict[str, float]:
    return {"conv1": conv1, "layer1": l1, "layer2": l2, "layer3": l3, "layer4": l4}


for _name, _ratios, _paper in [
    ("resnet18_table2_model1", _table2(0.20, 0.20, 0.30, 0.40, 0.50), 0.6961),
    ("resnet18_table2_model2", _table2(0.50, 0.50, 0.60, 0.70, 0.80), 0.9327),
    ("resnet18_table2_model3", _table2(0.40, 0.40, 0.50, 0.60, 0.70), 0.8525),
    ("resnet18_table2_model4", _table2(0.65, 0.65, 0.75, 0.85, 0.95), 0.9763),
]:
    PRESETS.register(
        _name,
        LayerPreset(
            ratios=_ratios,
            model="resnet18_cifar",
            description="paper table 2: conv1/layer1/layer2/layer3/layer4 channel ratios",
            paper_param_ratio=_paper,
        ),
    )


def match_ratio(ratios: dict[str, float], module_name: str) -> tuple[str | None, float]:
    """(prefix, ratio) of the longest prefix of `ratios` that matches `module_name`."""
    best: str | None = None
    for prefix in ratios:
        if (module_name == prefix or module_name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best, (ratios[best] if best is not None else 0.0)
