"""Reading recipe YAML with ``extends`` and ``--set``, remembering where every value came from.

Pydantic knows nothing of files and lines, so each source keeps its composed YAML node tree
and an error's ``loc`` is walked down it to find the line to print.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import RecipeError
from .builtin import builtin_recipe, is_builtin

Loc = tuple[str | int, ...]


@dataclass
class Source:
    """One place recipe values come from: a YAML file, or a ``--set`` override."""

    label: str
    node: yaml.Node | None = None
    override_path: Loc | None = None

    def locate(self, loc: Loc) -> tuple[int, int | None]:
        """Return (depth matched, 1-based line) for ``loc`` in this source."""
        if self.override_path is not None:
            n = 0
            for a, b in zip(self.override_path, loc, strict=False):
                if str(a) != str(b):
                    break
                n += 1
            return (n if n == len(self.override_path) else 0), None
        node, line, depth = self.node, None, 0
        if node is not None:
            line = node.start_mark.line + 1
        for seg in loc:
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(seg):
                        nxt, line = value, key.start_mark.line + 1
                        break
                if nxt is None:
                    break
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(seg, int):
                if seg >= len(node.value):
                    break
                node = node.value[seg]
                line = node.start_mark.line + 1
            else:
                break
            depth += 1
        return depth, line


@dataclass
class RecipeSources:
    """The merged recipe data and its sources, highest priority first."""

    data: dict[str, Any]
    sources: list[Source] = field(default_factory=list)
    path: Path | None = None

    def where(self, loc: Loc) -> str:
        """``file:line`` (or ``--set k=v``) for the value at ``loc``."""
        best: tuple[int, str] | None = None
        for src in self.sources:
            depth, line = src.locate(loc)
            label = src.label if line is None else f"{src.label}:{line}"
            # a --set replaces everything under its key, so it owns the deeper paths too
            if depth > 0 and (depth == len(loc) or src.override_path is not None):
                return label
            if best is None or depth > best[0]:
                best = (depth, label)
        return best[1] if best else (self.sources[0].label if self.sources else "<recipe>")


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


# A recipe is a small hand-written file: anything bigger or deeper is refused before it can
# exhaust memory (``extends: /dev/zero``) or the interpreter's stack (``[[[[...]]]]``).
MAX_RECIPE_BYTES = 4 << 20
MAX_DEPTH = 64


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (iterative; aliases may form cycles)."""
    stack = [(value, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth >= limit:
            return True
        if id(item) in seen:  # a shared or self-referencing alias: its depth is already counted
            continue
        seen.add(id(item))
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def duplicate_keys(node: yaml.Node | None) -> list[str]:
    """``LINE: duplicate key 'K' (first at line L)`` for every mapping key given twice.

    PyYAML keeps the last of two equal keys without a word, so a recipe with two ``train:``
    blocks would silently lose the first; the composed node tree still holds both.
    """
    found: list[tuple[int, str]] = []
    stack, seen = [node], set()
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:  # aliases share nodes (and may form cycles)
            continue
        seen.add(id(item))
        if isinstance(item, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in item.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if key.value in first:
                        found.append(
                            (
                                line,
                                f"{line}: duplicate key '{key.value}' (first at line "
                                f"{first[key.value]}); YAML would keep only the last",
                            )
                        )
                    else:
                        first[key.value] = line
                stack.extend((key, value))
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(item.value)
    return [message for _, message in sorted(found)]


def _load_yaml_text(text: str, label: str) -> tuple[Any, yaml.Node | None]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        duplicates = duplicate_keys(node)
        if duplicates:
            raise RecipeError([f"{label}:{d}" for d in duplicates])
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError([f"{label}{line}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise RecipeError([f"{label}: nested more than {MAX_DEPTH} levels deep"]) from None
    if _depth_exceeds(data, MAX_DEPTH):
        raise RecipeError([f"{label}: nested more than {MAX_DEPTH} levels deep"])
    return data, node


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        if not path.exists():
            raise FileNotFoundError(path)
        if not path.is_file():
            raise RecipeError([f"{path}: cannot read recipe: not a regular file"])
        with open(path, "rb") as f:
            raw = f.read(MAX_RECIPE_BYTES + 1)
        if len(raw) > MAX_RECIPE_BYTES:
            raise RecipeError([f"{path}: cannot read recipe: larger than {MAX_RECIPE_BYTES} bytes"])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise RecipeError([f"{path}: recipe file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError([f"{path}: cannot read recipe: {exc}"]) from None
    return _load_yaml_text(text, str(path))


def read_recipe_file(path: str | Path, _chain: tuple[Path, ...] = ()) -> RecipeSources:
    """Read a recipe and everything it ``extends``, merged; sources nearest-first.

    ``extends:`` is a path relative to the file, or ``builtin:NAME`` for a built-in recipe
    (``recipe.builtin``); ``path`` itself may be ``builtin:NAME`` too.
    """
    if is_builtin(path):
        path = builtin_recipe(path, str(path))
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise RecipeError([f"{path}: 'extends' forms a cycle: {cycle}"])
    data, node = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([f"{path}:1: the recipe must be a mapping, not {type(data).__name__}"])
    sources = [Source(str(path), node)]
    parent = data.pop("extends", None)
    if parent is None:
        return RecipeSources(data, sources, path)
    line = Source(str(path), node).locate(("extends",))[1]
    if not isinstance(parent, str):
        raise RecipeError(
            [f"{path}:{line}: extends: must be the path of one recipe file or builtin:NAME"]
        )
    if is_builtin(parent):
        target = builtin_recipe(parent, f"{path}:{line}: extends")
    else:
        target = path.parent / parent
    base = read_recipe_file(target, (*_chain, resolved))
    merged = deep_merge(base.data, data)
    return RecipeSources(merged, sources + base.sources, path)


def parse_override(text: str) -> tuple[Loc, Any]:
    """``a.b.0.c=value`` -> (('a', 'b', 0, 'c'), value parsed as YAML)."""
    if "=" not in text:
        raise RecipeError([f"--set {text}: expected KEY.PATH=VALUE"])
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise RecipeError([f"--set {text}: '{key}' is not a dotted path"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError([f"--set {text}: value is not valid YAML: {problem}"]) from None
    except RecursionError:
        raise RecipeError([f"--set {text}: nested more than {MAX_DEPTH} levels deep"]) from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise RecipeError([f"--set {text}: nested more than {MAX_DEPTH} levels deep"])
    loc = tuple(int(p) if p.isascii() and p.isdigit() else p for p in parts)
    return loc, value


def apply_override(data: dict[str, Any], loc: Loc, value: Any, label: str) -> None:
    node: Any = data
    for i, seg in enumerate(loc[:-1]):
        here = ".".join(map(str, loc[: i + 1]))
        if isinstance(node, dict):
            node = node.setdefault(str(seg), {})
        elif isinstance(node, list) and isinstance(seg, int):
            if seg >= len(node):
                raise RecipeError(
                    [f"{label}: {here}: index {seg} out of range ({len(node)} items)"]
                )
            node = node[seg]
        else:
            raise RecipeError([f"{label}: {here}: cannot descend into a {type(node).__name__}"])
    last = loc[-1]
    if isinstance(node, dict):
        node[str(last)] = value
    elif isinstance(node, list) and isinstance(last, int):
        if last > len(node):
            raise RecipeError([f"{label}: index {last} out of range ({len(node)} items)"])
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    else:
        raise RecipeError([f"{label}: cannot set a key on a {type(node).__name__}"])


def read_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RecipeSources:
    """Read a recipe file, its ``extends`` chain, and apply ``--set`` overrides in order."""
    rs = read_recipe_file(path)
    for text in overrides:
        loc, value = parse_override(text)
        label = f"--set {text}"
        apply_override(rs.data, loc, value, label)
        rs.sources.insert(0, Source(label, override_path=loc))
    return rs
