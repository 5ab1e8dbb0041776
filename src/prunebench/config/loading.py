"""Run configs from YAML files and `--set a.b=c` overrides, validated into one-line errors.

Every error becomes a `ConfigError` of one line that names the key and says how to fix it
(`describe_validation_error`); a command whose values come from its own options names the
option instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from prunebench.config.schema import RunConfig, StrictModel
from prunebench.config.yaml_input import check_plain, parse, parse_value, read_text
from prunebench.errors import ConfigError, PrunebenchError
from prunebench.registry import suggest


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b=c' -> (['a', 'b'], yaml-parsed 'c'); text that is not YAML stays a string."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got '{text}' (e.g. --set finetune.patience=5)")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set has an empty key in '{text}' (e.g. --set regime.target=0.9)")
    value = parse_value(raw, key) if raw.strip() else raw
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with each `a.b=c` applied (nested dicts created as needed)."""
    check_plain(raw, "", "config")
    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file as plain data: a mapping with string keys (see yaml_input)."""
    source = f"config file '{path}'"
    data = parse(read_text(path, "config file"), source)
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({data!r:.40})"
        raise ConfigError(f"{source} must hold a mapping of keys (e.g. seed: 0), not {kind}")
    return data


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names of the fields of the sub-model at `loc` (for 'did you mean' on unknown keys)."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
        args = [a for a in getattr(current, "__args__", ()) if hasattr(a, "model_fields")]
        if args:
            current = args[0]
    return list(getattr(current, "model_fields", {}))


def describe_validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    source: str,
    option: Callable[[str], str] | None = None,
) -> str:
    """One line for the first error, e.g. `finetune.patiense: unknown key (did you mean ...)`.

    Config files and --set get the advice to fix the key there; a command whose values come
    from its own options (`schedule`) passes `option`, which names the option for a key.
    """
    errors = exc.errors()
    first = errors[0]
    loc = tuple(p for p in first["loc"] if not isinstance(p, int))
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "extra_forbidden":
        hint = suggest(str(loc[-1]), _fields_at(model, loc[:-1]))
        return f"{source}: unknown key '{key}' ({hint}){more}"
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:  # a check of the whole model (e.g. a schedule): its message says it all
        return f"{source}: {message}{more}"
    got = first.get("input")
    got_text = (
        "" if isinstance(got, dict) or repr(got) in message else f" (got {_shorten(repr(got))})"
    )
    if first["type"] in NUMBER_ERRORS and isinstance(got, str):
        got_text += ", a string: write the number without quotes"
    if option is not None:
        where = f"{option(key)}: " if first["loc"] else ""
        return f"{source}: {where}{message}{got_text}{more}"
    return f"{source}: {key}: {message}{got_text}; fix it in the file or with --set {key}=...{more}"


NUMBER_ERRORS = {"int_type", "float_type", "bool_type"}


def _shorten(text: str, limit: int = 60) -> str:
    """A long value (a 300-character path, a 400-digit number) cut so the message stays short."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def validate(
    model: type[StrictModel],
    raw: dict[str, Any],
    source: str,
    option: Callable[[str], str] | None = None,
) -> Any:
    """`model` from `raw`, or one ConfigError line (see `describe_validation_error`)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, model, source, option)) from None
    except PrunebenchError as exc:  # raised by registries or schedules inside validators
        raise ConfigError(f"{source}: {exc}") from None


def load_run_config(
    path: Path | None = None, overrides: list[str] | None = None, seed: int | None = None
) -> RunConfig:
    """Read a YAML run config (or the defaults), apply overrides, validate."""
    raw = read_yaml(path) if path is not None else {}
    overrides = list(overrides or [])
    if seed is not None:
        overrides.append(f"seed={seed}")
    raw = apply_overrides(raw, overrides)
    return validate(RunConfig, raw, str(path) if path else "config")
