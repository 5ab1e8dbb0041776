"""One small generic registry so that every name in a config fails early, with a suggestion.

Entries can be declared lazily (`declare`): a name, the `module:attribute` that holds the object,
and the few facts that validating a config needs (a model's task, whether a criterion scores
channel groups). Config validation then never imports torch, timm or transformers; the module
is imported the first time something is built from it.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prunebench.errors import PrunebenchError

T = TypeVar("T")


class UnknownNameError(PrunebenchError, KeyError):
    """Raised for a name that is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


SHOWN = 12  # names an error message lists before it refers to `prunebench list`


def suggest(name: str, known: list[str]) -> str:
    """'did you mean 'x'?' when a close match exists, else the known names (the first dozen of
    a long list, which `prunebench list` shows whole)."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    names = sorted(known)
    if len(names) > SHOWN:
        return "known: " + ", ".join(names[:SHOWN]) + f", ... ({len(names)} in all)"
    return "known: " + ", ".join(names)


def load_reference(reference: str) -> Any:
    """'package.module:attribute' -> the attribute (the module is imported now)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Declared:
    """A lazily registered entry: where the object lives and what is known without loading it."""

    reference: str
    facts: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Maps names to objects (builders, specs, functions) of one kind, e.g. 'model'."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T | Declared] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Use as `@REG.register("name")` or `REG.register("name", obj)`."""

        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def declare(self, name: str, reference: str, **facts: Any) -> None:
        """Register `name` as `module:attribute`, imported on first `get`; `facts` answer
        `fact()` without importing it."""
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = Declared(reference, facts)

    def get(self, name: str) -> T:
        item = self._items[self.check(name)]
        if not isinstance(item, Declared):
            return item
        if name not in self._loaded:
            self._loaded[name] = load_reference(item.reference)
        return self._loaded[name]

    def fact(self, name: str, key: str) -> Any:
        """A declared fact of `name` (no import), else the attribute of the loaded object."""
        item = self._items.get(name)
        if isinstance(item, Declared) and key in item.facts:
            return item.facts[key]
        return getattr(self.get(name), key)

    def declared_facts(self, name: str) -> dict[str, Any]:
        """The facts declared for `name` (empty when it was registered directly)."""
        item = self._items.get(name)
        return dict(item.facts) if isinstance(item, Declared) else {}

    def is_declared(self, name: str) -> bool:
        """Declared by reference (importable in any process), not registered as an object."""
        return isinstance(self._items.get(name), Declared)

    def name_of(self, obj: object) -> str | None:
        """The name `obj` was registered (or, once loaded, declared) under; loads nothing."""
        for name, item in self._items.items():
            if item is obj or self._loaded.get(name) is obj:
                return name
        return None

    def check(self, name: str) -> str:
        """Return the name if registered (without loading it); raise UnknownNameError otherwise."""
        if name not in self._items:
            raise UnknownNameError(f"unknown {self.kind} '{name}' ({suggest(name, self.names())})")
        return name

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
