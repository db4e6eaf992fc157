"""The plugin API rules, checked on the source (also imports inside functions).

- **No private import across package boundaries.** A module or name whose last-but-any dotted
  part starts with one underscore (``_api``, ``_weight``; dunders such as ``__future__`` are not
  private) may be imported only from inside the package that holds it: ``a.b`` holds the module
  ``a.b._c``, the names ``_x`` of the package ``a.b`` and of its module ``a.b.m``. The importing
  module must be ``a.b`` or lie below it. This covers every import, of the project's modules and
  of other distributions' (``torch._C``), in the installed packages (``t2i_stages/``,
  ``plugins/``, ``export/``), the example plugin package and what ``new-plugin`` writes.
- **Plugins use the public plugin module only.** The built-in plugins (``plugins/``) import
  from the core only ``t2i_stages.plugin``; the example package and the scaffold import only
  ``t2i_stages.plugin``, torch, pydantic, pytest, the standard library and themselves; the core
  itself never imports ``t2i_stages.plugin`` (it is the plugins' view of the core, not a layer
  the core stands on).
"""

from __future__ import annotations

import sys
from pathlib import Path

import import_graph as ig
import pytest

from t2i_stages import hookspecs, plugin
from t2i_stages.scaffold import KINDS, scaffold_plugin

EXAMPLE = ig.ROOT / "examples" / "t2i-stages-example-plugin"
THIRD_PARTY_ALLOWED = {"torch", "pydantic", "pytest"}


def _installed() -> tuple[dict[str, Path], set[str]]:
    known = ig.modules()
    return known, {name for name, path in known.items() if path.name == "__init__.py"}


def _package_files(root: Path) -> dict[str, Path]:
    """A plugin package's modules (under ``src/``) and test files, by the name they import as."""
    return {
        ig.module_name(p, root): p for p in sorted(root.rglob("*.py")) if "build" not in p.parts
    }


@pytest.fixture(scope="module")
def scaffolds(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("scaffolds")
    return [scaffold_plugin(f"api-{kind}", kind, base / kind) for kind in KINDS]


def _outside_imports(files: dict[str, Path], own: set[str]) -> list[str]:
    """Imports of a third-party plugin package that are not the plugin API, torch, pydantic,
    pytest, the standard library or the package itself."""
    out = []
    for name, path in files.items():
        for rec in ig.import_records(name, path):
            top = rec.module.split(".")[0]
            if top == "t2i_stages":
                if rec.target == "t2i_stages.plugin" or rec.module == "t2i_stages.plugin":
                    continue
            elif top in sys.stdlib_module_names or top in THIRD_PARTY_ALLOWED | own:
                continue
            out.append(f"{path}:{rec.line}: {name} imports {rec.target}")
    return out


def _core_imports_of_plugins(known: dict[str, Path]) -> list[str]:
    out = []
    for name, path in known.items():
        for rec in ig.import_records(name, path):
            target = rec.target
            if not (rec.module == "t2i_stages" or rec.module.startswith("t2i_stages.")):
                continue
            if name.startswith("t2i_stages.plugins"):
                ok = rec.module == "t2i_stages.plugin" or rec.module.startswith(
                    "t2i_stages.plugins"
                )
                if not ok:
                    out.append(f"{path}:{rec.line}: {name} imports {target}")
            elif not name.startswith("t2i_stages.export") and (
                rec.module == "t2i_stages.plugin" or target == "t2i_stages.plugin"
            ):
                out.append(f"{path}:{rec.line}: {name} (core) imports {target}")
    return out


def test_no_private_import_across_package_boundaries(scaffolds):
    known, packages = _installed()
    files = dict(known)
    for root in (EXAMPLE, *scaffolds):
        files.update(_package_files(root))
    assert ig.private_imports(files, packages) == []


def test_the_built_in_plugins_import_the_core_only_through_t2i_stages_plugin():
    known, _ = _installed()
    assert _core_imports_of_plugins(known) == []


def test_the_example_and_the_scaffold_import_only_the_plugin_api_torch_and_pydantic(scaffolds):
    assert _outside_imports(_package_files(EXAMPLE), {"t2i_example_plugin"}) == []
    for root in scaffolds:
        own = {p.name for p in (root / "src").iterdir()}
        assert _outside_imports(_package_files(root), own) == [], root.name


def test_every_exported_name_exists_and_the_hooks_point_to_the_module():
    assert len(plugin.__all__) == len(set(plugin.__all__))
    missing = [n for n in plugin.__all__ if not hasattr(plugin, n)]
    assert missing == []
    for hook in hookspecs.KIND_HOOKS.values():
        doc = getattr(hookspecs.ComponentHooks, hook).__doc__
        assert "t2i_stages.plugin" in doc, hook


def test_the_rules_fail_on_planted_offenders(tmp_path, monkeypatch):
    """A private import across packages, a plugin's core import other than the plugin module
    and the core leaning on the plugin module are all found; a private import inside its own
    package is not."""
    for folder in ("t2i_stages", "plugins/kind", "plugins/other", "export"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "t2i_stages" / "spec.py").write_text("")
    (tmp_path / "t2i_stages" / "plugin.py").write_text("from .spec import Params\n")
    (tmp_path / "t2i_stages" / "run.py").write_text("def f():\n    from .plugin import Params\n")
    (tmp_path / "plugins" / "other" / "_hidden.py").write_text("x = 1\n")
    (tmp_path / "plugins" / "other" / "user.py").write_text("from ._hidden import x\n")
    (tmp_path / "plugins" / "kind" / "a.py").write_text(
        "from t2i_stages.plugin import Params\nfrom t2i_stages.spec import Params as P\n"
    )
    (tmp_path / "plugins" / "kind" / "b.py").write_text(
        "def g():\n    from t2i_stages.plugins.other._hidden import x\n"
        "    from t2i_stages.plugins.other.user import _y\n"
    )
    monkeypatch.setattr(ig, "ROOT", tmp_path)
    known, packages = _installed()
    found = ig.private_imports(known, packages)
    assert [line.split(": ", 1)[1] for line in found] == [
        "t2i_stages.plugins.kind.b imports t2i_stages.plugins.other._hidden.x "
        "(private to t2i_stages.plugins.other)",
        "t2i_stages.plugins.kind.b imports t2i_stages.plugins.other.user._y "
        "(private to t2i_stages.plugins.other)",
    ]
    assert sorted(line.split(": ", 1)[1] for line in _core_imports_of_plugins(known)) == [
        "t2i_stages.plugins.kind.a imports t2i_stages.spec.Params",
        "t2i_stages.run (core) imports t2i_stages.plugin.Params",
    ]
    pkg = tmp_path / "ext" / "src" / "ext_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import numpy\nfrom t2i_stages.registry import Registry\n")
    assert len(_outside_imports(_package_files(tmp_path / "ext"), {"ext_pkg"})) == 2
