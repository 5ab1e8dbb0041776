"""Commands that look things up without a results directory: `schedule`, `list`, `config show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prunebench.cli.base import SetOpt, out
from prunebench.errors import PrunebenchError


def _targets(text: str) -> list[float]:
    """`--targets 0.5,0.8,0.9` as numbers; an empty or non-numeric item is named."""
    values = []
    for item in text.split(","):
        try:
            values.append(float(item))
        except ValueError:
            raise PrunebenchError(
                f"--targets: {item.strip()!r} is not a number; give comma-separated numbers "
                "such as 0.5,0.8,0.9"
            ) from None
    return values


def schedule(
    regime: Annotated[
        str, typer.Argument(help="one_shot, constant, geometric, hybrid, agp, manual")
    ],
    target: Annotated[float | None, typer.Option(help="final cumulative target in (0, 1)")] = None,
    steps: Annotated[int | None, typer.Option(help="number of steps")] = None,
    rate: Annotated[float | None, typer.Option(help="geometric/hybrid rate per step")] = None,
    step: Annotated[float | None, typer.Option(help="constant: share per step")] = None,
    first: Annotated[float | None, typer.Option(help="hybrid: the one-shot step p_k")] = None,
    targets: Annotated[str | None, typer.Option(help="manual: comma-separated targets")] = None,
    tolerance: Annotated[float | None, typer.Option(help="gap closed by the last step")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print a schedule's cumulative targets and per-step increments."""
    from prunebench.config.loading import validate
    from prunebench.config.schedules import increments
    from prunebench.config.schema import RegimeConfig

    given = {
        "name": regime,
        "target": target,
        "steps": steps,
        "rate": rate,
        "step": step,
        "first": first,
        "tolerance": tolerance,
        "targets": _targets(targets) if targets is not None else None,
    }
    values = {k: v for k, v in given.items() if v is not None}
    cfg = validate(RegimeConfig, values, "schedule", option=_schedule_option)
    cumulative = cfg.schedule()
    inc = increments(cumulative)
    if as_json:
        data = {"cumulative": _rounded(cumulative), "increments": _rounded(inc)}
        out.print_json(json.dumps(data))
        return
    from rich.table import Table

    noun = "step" if len(cumulative) == 1 else "steps"
    table = Table(title=f"{regime}: {len(cumulative)} {noun}")
    for col in ("step", "cumulative", "increment", "remaining"):
        table.add_column(col, justify="right")
    for i, (c, d) in enumerate(zip(cumulative, inc, strict=True), 1):
        table.add_row(str(i), f"{c:.6f}", f"{d:.6f}", f"{1 - c:.6f}")
    out.print(table)


def _schedule_option(key: str) -> str:
    """The `schedule` argument or option that sets a regime field."""
    return "REGIME" if key == "name" else f"--{key}"


def _rounded(values: list[float]) -> list[float]:
    """12 significant digits: what float arithmetic got right, without its noise
    (0.19999999999999996 -> 0.2)."""
    return [float(f"{v:.12g}") for v in values]


def list_(
    kind: Annotated[str, typer.Argument(help="models, datasets, criteria, presets or regimes")],
    term: Annotated[str | None, typer.Argument(help="only names containing this")] = None,
) -> None:
    """List the names a config can hold (torchvision and timm models included), or search them."""
    from prunebench.cli.listing import listing

    rows = listing(kind, term)
    if not rows:
        raise PrunebenchError(f"no {kind} match '{term}'")
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        out.print(f"{name:<{width}}  {description}".rstrip(), markup=False, highlight=False)


def config_show(
    config: Annotated[
        Path | None, typer.Argument(help="run config YAML (default: defaults)")
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Print the fully resolved config (every default filled in) and its run id."""
    import yaml

    from prunebench.config.identity import run_id
    from prunebench.config.loading import load_run_config

    cfg = load_run_config(config, list(set_ or []))
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=False)
    out.print(f"# run id: {run_id(cfg)}\n{text}", markup=False, highlight=False, end="")
