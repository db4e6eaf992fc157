"""The shapes package's modules import one way: no cycle, at module level or inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import t2i_stages.plugins.datasets.shapes as shapes

ROOT = Path(shapes.__file__).parent


def _imports() -> dict[str, set[str]]:
    """Module (dotted, relative to the package) -> the package modules it imports, anywhere."""
    names = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix("__init__").strip(".")
        for p in ROOT.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        package = name.rsplit(".", 1)[0] if "." in name else ""
        name = name.removesuffix("__init__").strip(".")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = [p for p in package.split(".") if p]
                parts = parts[: len(parts) - node.level + 1] + (
                    [node.module] if node.module else []
                )
                base = ".".join(parts)
                deps |= {base, *(f"{base}.{a.name}".strip(".") for a in node.names)}
        graph[name] = {d for d in deps if d in names and d != name}
    return graph


def test_no_import_cycles_in_the_shapes_package():
    graph = _imports()  # "" is the package's __init__, "oracle" the subpackage's
    assert {"", "params", "scene", "captions", "cache", "dataset", "oracle", "oracle.model"} <= set(
        graph
    )
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node not in done:
            for dep in graph[node]:
                visit(dep, (*path, node))
            done.add(node)

    for module in graph:
        visit(module, ())
    assert "captions" not in graph["scene"] and "scene" in graph["captions"]
