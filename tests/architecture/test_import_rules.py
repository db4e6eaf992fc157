"""The architecture's two import rules, checked on the source (also imports inside functions).

- The core (``t2i_stages/``) imports nothing from the built-in plugins (``plugins/``): it knows
  plugins only through the registry, as it knows a third party's.
- No import cycles between packages: the core's subpackages, each module at the core's top
  level, each plugin kind and the exporter.
"""

from __future__ import annotations

import import_graph as ig


def test_the_core_imports_nothing_from_the_plugins():
    known = ig.modules()
    offenders = [
        f"{name} imports {target}"
        for name, path in known.items()
        if not name.startswith(("t2i_stages.plugins", "t2i_stages.export"))
        for target in sorted(ig.imports(name, path))
        if target.startswith("t2i_stages.plugins")
    ]
    assert offenders == []


def test_there_are_no_import_cycles_between_packages():
    assert ig.cycles(ig.graph()) == []


def test_the_checks_see_a_cycle_and_a_core_import_of_a_plugin(tmp_path, monkeypatch):
    """The rules can fail: a planted cycle and a planted plugin import are both found."""
    core = tmp_path / "t2i_stages"
    (core / "a").mkdir(parents=True)
    (core / "b").mkdir()
    (tmp_path / "plugins" / "kind").mkdir(parents=True)
    (core / "__init__.py").write_text("")
    (core / "a" / "__init__.py").write_text("from ..b import x\n")
    (core / "b" / "__init__.py").write_text("def f():\n    from t2i_stages.a import y\n")
    (core / "c.py").write_text("def g():\n    from t2i_stages.plugins.kind import z\n")
    (tmp_path / "plugins" / "__init__.py").write_text("")
    (tmp_path / "plugins" / "kind" / "__init__.py").write_text("")
    (tmp_path / "export").mkdir()
    monkeypatch.setattr(ig, "ROOT", tmp_path)
    assert ig.cycles(ig.graph()) == [["t2i_stages.a", "t2i_stages.b"]]
    known = ig.modules()
    assert "t2i_stages.plugins.kind" in ig.imports("t2i_stages.c", known["t2i_stages.c"])
