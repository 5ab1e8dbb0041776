"""YAML from users, read as plain data (str keys; str, number, bool, null, list, mapping values).

A config is a few kilobytes of mappings. Anything else is refused with a `ConfigError` before
it can cost memory or time: files over `MAX_BYTES`, nesting deeper than `MAX_DEPTH`, aliases
that expand to more than `MAX_NODES` nodes (a "billion laughs" file is 1 KB on disk), aliases
that refer to themselves, keys written twice, text that is not UTF-8, and values that JSON
cannot hold (dates, sets, binary, pairs), which would otherwise surface later as TypeErrors far
from the file. The pure-Python loader: libyaml's (CSafeLoader) segfaults on deep nesting.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import yaml

from prunebench.errors import ConfigError

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000
PLAIN_SCALARS = (str, int, float, bool, type(None))

# YAML 1.1 reads `1e-3` (no dot, or no exponent sign) as a string; YAML 1.2 and every user mean
# a number. Without this, strict number fields would refuse a learning rate written as 1e-3.
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")


class Refused(yaml.YAMLError):
    """The document parses, but is too deep, too large once its aliases are expanded,
    contains itself, or writes a key twice."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing beyond `MAX_DEPTH` levels (before Python's stack does)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise Refused(f"nests deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789.")
)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_unique_keys(node: yaml.Node) -> None:
    """A key written twice in one mapping: YAML keeps the last silently, hiding the first."""
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value != "<<":
            if (key.tag, key.value) in seen:
                raise Refused(
                    f"has the key '{key.value}' twice (line {key.start_mark.line + 1}); keep one"
                )
            seen.add((key.tag, key.value))


def check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand beyond `MAX_NODES` nodes or `MAX_DEPTH` levels,
    that contains itself, or that has a mapping with a repeated key (checked on the same walk).
    Iterative and memoised: shared nodes are measured once, so a bomb costs milliseconds."""
    measured: dict[int, tuple[int, int]] = {}  # id -> (expanded nodes, expanded depth)
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            sizes = [measured[id(c)] for c in _children(node)]
            size = 1 + sum(s for s, _ in sizes)
            depth = 1 + max((d for _, d in sizes), default=0)
            if size > MAX_NODES:
                raise Refused(f"expands to more than {MAX_NODES:,} values through its aliases")
            if depth > MAX_DEPTH:
                raise Refused(f"nests deeper than {MAX_DEPTH} levels through its aliases")
            measured[key] = (size, depth)
            open_nodes.discard(key)
        elif key not in measured:
            if key in open_nodes:
                raise Refused("has an alias that refers to a node containing itself")
            _check_unique_keys(node)
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))


def _describe(value: Any) -> str:
    if isinstance(value, datetime.date):
        return f"a date ({value})"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def check_plain(value: Any, where: str, source: str) -> None:
    """Refuse anything but str-keyed mappings, lists and JSON scalars; `where` is the key path."""
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"{source}: key '{key}' under '{where or '(top level)'}' is "
                    f"{_describe(key)}, not a name; quote it or use a config key"
                )
            check_plain(child, f"{where}.{key}" if where else key, source)
    elif isinstance(value, list):
        for child in value:
            check_plain(child, where, source)
    elif not isinstance(value, PLAIN_SCALARS):
        raise ConfigError(
            f"{source}: {where or 'the value'} is {_describe(value)}, not a config value; "
            "quote it if you mean text"
        )


class BadScalar(yaml.YAMLError):
    """A scalar its (implicit or explicit) tag cannot build: `2020-13-45`, `0x_`, `!!int x`."""


def load(text: str) -> Any:
    """YAML text -> data, bounded (see the module docstring); raises a yaml.YAMLError."""
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        try:
            return loader.construct_document(node)
        except (ValueError, TypeError, AttributeError) as exc:  # PyYAML's own parse of a value
            raise BadScalar(str(exc) or type(exc).__name__) from None
    finally:
        loader.dispose()


def parse(text: str, source: str) -> Any:
    """Plain data from YAML text; every failure is a one-line ConfigError naming `source`."""
    try:
        data = load(text)
    except Refused as exc:
        raise ConfigError(f"{source} is refused: it {exc}") from None
    except BadScalar as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source} is not valid YAML{where}") from None
    check_plain(data, "", source)
    return data


def parse_value(text: str, key: str) -> Any:
    """A `--set key=value` value: YAML when it parses (`0.5`, `[1, 2]`, `{a: 1}`), else the text
    itself (`/data/my cifar`); a value too large to load or not plain is an error all the same."""
    try:
        value = load(text)
    except Refused as exc:
        raise ConfigError(f"--set {key}: the value {exc}") from None
    except yaml.YAMLError:
        return text
    check_plain(value, key, "--set")
    return value


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a config file; a missing, huge, binary or unreadable file is refused."""
    try:
        if not path.exists():
            raise ConfigError(f"{what} '{path}' does not exist")
        if path.is_dir():
            raise ConfigError(f"{what} '{path}' is a directory; give a YAML file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(
                f"{what} '{path}' has {size:,} bytes; a config is at most {MAX_BYTES:,} bytes"
            )
        with path.open("rb") as stream:  # bounded: /dev/zero or a pipe has no size to stat
            data = stream.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ConfigError(f"{what} '{path}' is longer than a config's {MAX_BYTES:,} bytes")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} '{path}' is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML"
        ) from None
