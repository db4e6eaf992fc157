"""Fixtures that install fake third-party plugin distributions (a dist-info folder on sys.path)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def install_dist(tmp_path, monkeypatch):
    """Return install(dist_name, {entry_point_name: "module"}) making a discoverable distribution."""
    monkeypatch.syspath_prepend(str(HERE))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    for var in ("T2I_STAGES_DISABLE_PLUGINS", "T2I_STAGES_LOAD_PLUGINS"):
        monkeypatch.delenv(var, raising=False)

    def install(name: str, entry_points: dict[str, str], version: str = "0.1") -> None:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        eps = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[t2i_stages]\n{eps}\n")

    yield install
    for mod in [m for m in sys.modules if m.startswith("t2i_toy")]:
        del sys.modules[mod]


@pytest.fixture
def toy(install_dist):
    install_dist("acme-t2i", {"acme": "t2i_toy_plugin"})


@pytest.fixture
def write(tmp_path):
    """write("name.yaml", text) -> path, dedenting the text."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write
