"""The shared-prefix plan: which steps runs share, counted independently from the schedules."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from prunebench.config import schedules
from prunebench.config.sweep_grid import load_sweep
from prunebench.engine.plan import build_plan, count, epoch_bounds, render_tree

TARGETS = [0.7, 0.8, 0.88, 0.92, 0.96, 0.99]
SWEEPS = Path(__file__).parents[2] / "configs" / "sweeps"


def distinct_prefixes(schedule_list: list[list[float]]) -> int:
    """Independent count: distinct prefixes of cumulative-target lists (same settings)."""
    return len(
        {tuple(round(t, 12) for t in s[:i]) for s in schedule_list for i in range(1, len(s) + 1)}
    )


def test_geometric_runs_to_several_targets_share_their_prefixes(tiny):
    configs = [tiny("regime.steps=null", "regime.rate=0.2", f"regime.target={t}") for t in TARGETS]
    plan = build_plan(configs)
    expected = [schedules.geometric(t, rate=0.2) for t in TARGETS]
    assert plan.naive_steps == sum(len(s) for s in expected) == 72
    assert plan.planned_steps == distinct_prefixes(expected) == 26
    # the run to 0.99 passes through every node of the chain that the others leave
    deepest = plan.runs[-1]
    assert [plan.nodes[s.key].step.target for s in deepest.steps] == expected[-1]
    assert len(plan.nodes[deepest.steps[0].key].runs) == len(TARGETS)


def test_hybrids_share_the_one_shot_step_with_one_shot_to_p_k(tiny):
    # One-shot retrains its step with patience 4; the hybrids' first step has first_patience 4:
    # the same effective settings, hence the same node.
    one_shot = tiny(
        "regime.name=one_shot", "regime.steps=null", "regime.target=0.5", "finetune.patience=4"
    )
    hybrids = [
        tiny(
            "regime.name=hybrid",
            "regime.steps=null",
            "regime.first=0.5",
            f"regime.rate={q}",
            f"regime.target={t}",
            "finetune.first_patience=4",
            "finetune.patience=1",
        )
        for q, t in [(0.1, 0.7), (0.05, 0.8), (0.2, 0.9)]
    ]
    plan = build_plan([one_shot, *hybrids])
    first = plan.nodes[plan.runs[0].steps[0].key]
    assert first.step.target == 0.5
    assert first.runs == [r.run_id for r in plan.runs]
    assert first.ends == [plan.runs[0].run_id]
    tails = [len(h.regime.schedule()) - 1 for h in hybrids]
    assert plan.naive_steps == 1 + sum(1 + n for n in tails)
    assert plan.planned_steps == 1 + sum(tails)


@pytest.mark.parametrize(
    "change",
    [
        "seed=1",
        "prune.criterion=random",
        "finetune.patience=2",
        "finetune.optimizer.lr=0.02",
        "pretrain.epochs=5",
        "prune.scope=layerwise",
    ],
)
def test_anything_a_step_depends_on_separates_the_trees(tiny, change):
    plan = build_plan([tiny(), tiny(change)])
    assert plan.planned_steps == plan.naive_steps == 4
    assert len(plan.roots) == (1 if change.startswith("finetune") else 2)


def test_name_and_device_are_not_part_of_a_run(tiny):
    plan = build_plan([tiny("name=a"), tiny("name=b", "device=auto")])
    assert len(plan.runs) == 1 and plan.runs[0].label == "a"
    assert plan.planned_steps == 2


def test_fixed_fine_tuning_epochs_are_exact_and_patience_gives_bounds(tiny):
    fixed = [
        tiny(
            "finetune.mode=fixed",
            "finetune.epochs=3",
            f"regime.target={t}",
            "regime.steps=null",
            "regime.rate=0.5",
        )
        for t in (0.7, 0.9)
    ]
    counts = count(build_plan(fixed))
    # 0.7: [0.5, 0.7]; 0.9: [0.5, 0.75, 0.875, 0.9]: 6 naive steps, 5 planned
    assert schedules.geometric(0.9, rate=0.5) == [0.5, 0.75, 0.875, 0.9]
    assert (counts.naive_steps, counts.planned_steps) == (6, 5)
    assert counts.naive_epochs == (18, 18) and counts.planned_epochs == (15, 15)
    patience = build_plan([tiny("finetune.patience=2", "finetune.max_epochs=9")])
    assert epoch_bounds(patience.nodes[patience.runs[0].steps[0].key].step.settings) == (3, 9)
    stored = {patience.runs[0].steps[0].key: 5}
    assert count(patience, stored).to_compute_epochs == (3, 9)
    assert count(patience, stored).planned_epochs == (8, 14)


def test_critical_path_and_tree_rendering(tiny):
    configs = [
        tiny("regime.steps=null", "regime.rate=0.5", f"regime.target={t}") for t in (0.7, 0.9)
    ]
    plan = build_plan(configs)
    first = plan.runs[1].steps[0].key
    assert plan.critical_path()[first] == 4  # 0.5 -> 0.75 -> 0.875 -> 0.9
    lines = render_tree(plan, stored={first: 2})
    assert lines[1].startswith("└─ step 1: 0.5000") and "2 runs" in lines[1]
    assert "· 2 epochs · 2 runs [stored]" in lines[1]  # stored: its real epochs
    assert any("step 2: 0.7000" in line and "@0.7" in line for line in lines)
    assert any("steps 2-4 (3): 0.7500 -> 0.9000" in line for line in lines)


def test_hybrid_preset_has_the_papers_rows_and_step_counts():
    _, configs, skipped = load_sweep(SWEEPS / "tables_3_4_hybrid.yaml", ["seed=0"])
    assert not skipped
    assert len(configs) == 63  # 27 rows of table 3 + 36 of table 4
    for cfg in configs:
        r = cfg.regime
        # the paper's reading: n geometric steps of the ORIGINAL weights close target - p_k
        n = math.log(1 - (r.target - r.first)) / math.log(1 - r.rate)
        assert len(r.schedule()) == 1 + round(n), cfg.name
        assert cfg.name.startswith(f"hybrid p_k={r.first:g} q~")
    names = {(c.name, c.regime.target) for c in configs}
    assert len(names) == 63
    plan = build_plan(configs)
    # every hybrid with the same p_k shares its first step: 4 first steps instead of 63
    assert plan.planned_steps == plan.naive_steps - 63 + 4


@pytest.mark.parametrize(
    ("preset", "runs"),
    [
        ("fig2_regimes", 54),
        ("fig4_budget", 72),
        ("fig5_criteria", 108),
        ("fig7_patience", 36),
        ("fig7_step_size", 24),
        ("demo", 40),
    ],
)
def test_presets_expand_to_named_runs_with_seeds(preset, runs):
    _, configs, _ = load_sweep(SWEEPS / f"{preset}.yaml")
    assert len(configs) == runs
    seeds = {c.seed for c in configs}
    assert seeds == ({0, 1} if preset == "demo" else {0, 1, 2})
    per_seed = [(c.name, c.regime.final_target) for c in configs if c.seed == 0]
    assert len(set(per_seed)) == len(per_seed) == runs // len(seeds)


def test_a_step_shared_by_key_prunes_to_one_exact_target(tiny):
    a, b = (
        tiny("regime.name=constant", "regime.steps=null", "regime.step=0.1", f"regime.target={t}")
        for t in (0.7, 0.8)
    )
    assert schedules.constant(0.8, step=0.1)[6] != 0.7  # 0.1 x 7 in floating point
    plan = build_plan([a, b])
    seventh = [run.steps[6] for run in plan.runs]
    assert seventh[0].key == seventh[1].key
    assert seventh[0].target == 0.7 and seventh[1].target == 0.1 * 7  # each run's own value
    assert seventh[0].prune_target == seventh[1].prune_target == 0.7
