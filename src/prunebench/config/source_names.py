"""Where a model or a dataset comes from, read from `model.name` / `data.name` (light: no torch).

A name is either registered (`resnet18_cifar`, `cifar10`, ...) or a source:
    torchvision:NAME    any classification model of torchvision.models       (models)
    timm:NAME           any timm model, built with pretrained=False            (models)
    hf                  a local Hugging Face folder / config.json              (models)
    python:TARGET:ATTR  the user's builder; TARGET is a .py file or a module   (models, datasets)
The source string IS the name, so it is part of the run id and stored with the run; export and
load_pruned rebuild from it. Config validation only parses here (syntax, files that must
exist); whether the name exists in torchvision / timm, and importing user code, happen when the
model is built, which the driver does before any compute (`Workspace.check`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunebench.errors import ConfigError
from prunebench.registry import suggest

MODEL_KINDS = ("torchvision", "timm", "hf", "python")
DATA_KINDS = ("python",)
# Hugging Face architecture-name endings -> task (config.json's `architectures`)
HF_TASKS = {"ForCausalLM": "causal_lm", "LMHeadModel": "causal_lm",
            "ForImageClassification": "classification"}  # fmt: skip


@dataclass(frozen=True)
class Source:
    """`kind`: 'registered' or one of MODEL_KINDS; `target`: what follows `kind:`."""

    kind: str
    target: str = ""

    @property
    def registered(self) -> bool:
        return self.kind == "registered"


def parse(name: str, kinds: tuple[str, ...] = MODEL_KINDS) -> Source:
    """The source a name stands for; a malformed source is a ConfigError (one line)."""
    kind, colon, target = name.partition(":")
    if kind == "hf" and "hf" in kinds:
        if colon:
            raise ConfigError(
                "the hf source takes no name: set model.name=hf and point model.weights at a "
                "local Hugging Face folder (or model.options.config at a config.json)"
            )
        return Source("hf")
    if not colon or kind not in kinds:
        return Source("registered", name)
    if not target:
        raise ConfigError(f"'{name}' names no {kind} model; e.g. {kind}:{_EXAMPLES[kind]}")
    if kind == "python":
        module, sep, attr = target.rpartition(":")
        if not sep or not module or not attr.isidentifier():
            raise ConfigError(
                f"'{name}' must be python:FILE.py:FUNCTION or python:package.module:FUNCTION"
            )
        if is_file(module) and not Path(module).is_file():
            raise ConfigError(f"'{name}': file '{module}' does not exist (paths are from the cwd)")
    return Source(kind, target)


_EXAMPLES = {"torchvision": "mobilenet_v2", "timm": "resnet18", "python": "my_model.py:build"}


def is_file(module: str) -> bool:
    return module.endswith(".py") or "/" in module or "\\" in module


def hf_task(config: Path | dict[str, Any] | None) -> str | None:
    """The task a Hugging Face config (a config.json, or the config as a mapping) declares
    through `architectures` (None: unknown, the data decides between a causal LM and an image
    classifier)."""
    if isinstance(config, dict):
        architectures = config.get("architectures") or []
    elif config is None or not config.is_file():
        return None
    else:
        try:
            architectures = json.loads(config.read_text()).get("architectures") or []
        except (OSError, ValueError, AttributeError):
            return None
    if not isinstance(architectures, list):
        return None
    for arch in architectures:
        for ending, task in HF_TASKS.items():
            if str(arch).endswith(ending):
                return task
    return None


def hf_config_file(weights: Path | None, options: dict[str, Any]) -> Path | None:
    """config.json of an `hf` model: `model.options.config` (a path), else the weights folder's;
    None for a config given as a mapping."""
    if isinstance(options.get("config"), dict):
        return None
    if options.get("config") is not None:
        return Path(options["config"])
    if weights is not None and Path(weights).is_dir():
        return Path(weights) / "config.json"
    return None


def load_python(target: str, what: str = "model") -> Any:
    """The attribute `ATTR` of `FILE.py` or of an importable module (user code runs here)."""
    module_name, _, attr = target.rpartition(":")
    if is_file(module_name):
        path = Path(module_name).resolve()
        if not path.is_file():
            raise ConfigError(
                f"{what} source python:{target}: file '{module_name}' not found from "
                f"{Path.cwd()}; run from the directory the path is relative to"
            )
        key = "prunebench_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        module = sys.modules.get(key)
        if module is None:
            spec = importlib.util.spec_from_file_location(key, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module
            try:
                spec.loader.exec_module(module)
            except (Exception, SystemExit) as exc:  # user code: its exit is an error, too
                del sys.modules[key]
                raise ConfigError(
                    f"{what} source python:{target}: importing '{module_name}' failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"{what} source python:{target}: cannot import module '{module_name}' ({exc}); "
                "put the directory that holds it on PYTHONPATH"
            ) from None
        except (Exception, SystemExit) as exc:
            raise ConfigError(
                f"{what} source python:{target}: importing '{module_name}' failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
    if not hasattr(module, attr):
        public = [n for n in vars(module) if not n.startswith("_")]
        raise ConfigError(
            f"{what} source python:{target}: '{module_name}' has no attribute '{attr}' "
            f"({suggest(attr, public)})"
        )
    return getattr(module, attr)


def load_builder(target: str, what: str, spec_type: type) -> Any:
    """The attribute python:`target` names: a `spec_type` instance as it is, else a function."""
    obj = load_python(target, what)
    if not isinstance(obj, spec_type) and not callable(obj):
        raise ConfigError(
            f"{what} source python:{target} is a {type(obj).__name__}, not a function or a "
            f"{spec_type.__name__}"
        )
    return obj


def python_reference(obj: Any) -> str | None:
    """`python:TARGET:ATTR` under which a module (or a file imported by path) holds `obj`, or
    None when only __main__ or a function's locals do: what lets an export rebuild a model
    that was registered from Python in another process. The module defining the spec's builder
    is looked at first, then every imported module."""
    first = getattr(getattr(obj, "build", obj), "__module__", None)
    modules = [(first, sys.modules.get(first or "")), *list(sys.modules.items())]
    for module_name, module in modules:
        if module is None or module_name == "__main__":
            continue
        try:
            attrs = list(vars(module).items())
        except TypeError:
            continue
        for attr, value in attrs:
            if value is obj and not attr.startswith("_"):
                where = (
                    module.__file__ if module_name.startswith("prunebench_user_") else module_name
                )
                return f"python:{where}:{attr}"
    return None
