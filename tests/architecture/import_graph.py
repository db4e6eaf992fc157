"""The project's import graph, read from the source (every import, also inside functions)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# source folder -> the package it installs as (pyproject.toml's package-dir)
PACKAGES = {
    "t2i_stages": "t2i_stages",
    "plugins": "t2i_stages.plugins",
    "export": "t2i_stages.export",
    "serve": "t2i_stages.serve",
}


def modules() -> dict[str, Path]:
    """Every module of the project: dotted name -> file."""
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


@dataclass(frozen=True)
class Import:
    """One imported thing: ``import module`` (name None) or ``from module import name``, with
    relative imports made absolute."""

    module: str
    name: str | None
    line: int

    @property
    def target(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module


def import_records(name: str, path: Path) -> list[Import]:
    """Every import of module ``name`` (file ``path``), also those inside functions."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [Import(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [Import(base, a.name, node.lineno) for a in node.names]
    return found


def imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (absolute names)."""
    found: set[str] = set()
    for rec in import_records(name, path):
        found.add(rec.module)
        found.add(rec.target)
    return {m for m in found if m == "t2i_stages" or m.startswith("t2i_stages.")}


def module_name(path: Path, root: Path) -> str:
    """The dotted name a file outside the installed packages imports as: below a ``src/``
    folder its package path, otherwise its file name (a test module)."""
    parts = path.relative_to(root).with_suffix("").parts
    if "src" in parts:
        parts = parts[parts.index("src") + 1 :]
    else:
        parts = parts[-1:]
    return ".".join(p for p in parts if p != "__init__") or path.parent.name


def is_private(part: str) -> bool:
    """``_x`` is private; a dunder (``__future__``, ``__version__``) is not."""
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_holder(rec: Import, packages: set[str]) -> str | None:
    """The package a private module or name belongs to, or None when ``rec`` imports nothing
    private: ``a.b`` for ``a.b._c`` (and for ``from a.b._c import x``), for ``from a.b import
    _x`` when ``a.b`` is a package, and for ``from a.b.m import _x`` when ``m`` is a module."""
    parts = rec.module.split(".")
    for i, part in enumerate(parts):
        if is_private(part):
            return ".".join(parts[:i])
    if rec.name and is_private(rec.name):
        return rec.module if rec.module in packages else rec.module.rpartition(".")[0]
    return None


def private_imports(files: dict[str, Path], packages: set[str]) -> list[str]:
    """``file:line: NAME imports PRIVATE (private to HOLDER)`` for every import of a private
    module or name from outside the package that holds it."""
    out = []
    for name, path in sorted(files.items()):
        for rec in import_records(name, path):
            holder = private_holder(rec, packages)
            if holder is None or (holder and (name == holder or name.startswith(holder + "."))):
                continue
            out.append(
                f"{path}:{rec.line}: {name} imports {rec.target} (private to {holder or 'its file'})"
            )
    return out


def node_of(module: str, known: dict[str, Path]) -> str:
    """What the cycle rule compares: a subpackage of the core or a plugin kind (``t2i_stages.
    training``, ``t2i_stages.plugins.datasets``), or a module at the core's top level
    (``t2i_stages.api``)."""
    parts = module.split(".")
    depth = 3 if module.startswith(("t2i_stages.plugins.", "t2i_stages.export.")) else 2
    if parts[:2] == ["t2i_stages", "export"]:
        depth = 2
    node = ".".join(parts[:depth])
    while node not in known and "." in node:
        node = node.rsplit(".", 1)[0]
    return node


def graph() -> dict[str, set[str]]:
    """node -> the nodes it imports."""
    known = modules()
    out: dict[str, set[str]] = {}
    for name, path in known.items():
        src = node_of(name, known)
        for target in imports(name, path):
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]  # `from pkg import name` names an attribute
            dst = node_of(target, known)
            if dst != src and target in known and dst != "t2i_stages":
                out.setdefault(src, set()).add(dst)
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(set(g) | {w for ws in g.values() for w in ws}):
        if v not in index:
            visit(v)
    return found
