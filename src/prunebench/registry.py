"""One small generic registry so that every name in a config fails early, with a suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from prunebench.errors import PrunebenchError

T = TypeVar("T")


class UnknownNameError(PrunebenchError, KeyError):
    """Raised for a name that is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def suggest(name: str, known: list[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else the list of known names."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known: " + ", ".join(sorted(known))


class Registry(Generic[T]):
    """Maps names to objects (builders, specs, functions) of one kind, e.g. 'model'."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Use as `@REG.register("name")` or `REG.register("name", obj)`."""

        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} '{name}' ({suggest(name, self.names())})"
            ) from None

    def check(self, name: str) -> str:
        """Return the name if registered; raise UnknownNameError otherwise (for validators)."""
        self.get(name)
        return name

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
