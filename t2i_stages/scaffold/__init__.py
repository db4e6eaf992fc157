"""The plugin package ``t2i-stages new-plugin`` writes, from the templates in ``templates/``.

The package works as generated: its entry point registers one component of the chosen kind, a
tiny recipe extends a built-in one (``extends: builtin:dmgan.yaml``) and uses it, and its tests
check that the registry lists it, that the recipe validates and that the component builds and
runs. The generated code imports t2i-stages through ``t2i_stages.plugin`` only. The templates
are package data (``string.Template``: ``$name`` is filled in, ``$$`` is a dollar sign).
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from pathlib import Path
from string import Template

from ..errors import T2IError

KINDS = ("fusion", "stage", "conditioning")

_NAME = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")

HOOKS = {
    "fusion": "t2i_stages_fusion",
    "stage": "t2i_stages_stages",
    "conditioning": "t2i_stages_conditioning",
}
SUMMARIES = {
    "fusion": "gated scaled dot-product attention from pixels to words (scaffold)",
    "stage": "fusion, residual blocks and upsampling with a skip (scaffold)",
    "conditioning": "the words with the sentence mixed in (scaffold)",
}

# How the demo recipe's last stage uses the new component.
STAGE_SLOTS = {
    "fusion": "{type: refine, params: {fusion: {type: $component}, residual_blocks: 1}}",
    "stage": "{type: $component, params: {fusion: {type: word_attention}}}",
    "conditioning": (
        "{type: refine, params: {conditioning: {type: $component}, "
        "fusion: {type: dynamic_memory}, residual_blocks: 1}}"
    ),
}


def template(name: str) -> Template:
    """One template file of this package."""
    text = resources.files(__name__).joinpath("templates", f"{name}.tmpl").read_text("utf-8")
    return Template(text)


def names_for(name: str) -> dict[str, str]:
    """Distribution, module, entry-point, component and class names for a plugin NAME."""
    if not _NAME.match(name):
        raise T2IError(
            f"new-plugin: '{name}' is not a usable name (lower-case letters and digits, words "
            "joined by '-' or '_', starting with a letter)"
        )
    snake = name.replace("-", "_")
    if keyword.iskeyword(snake):
        raise T2IError(f"new-plugin: '{name}' is a Python keyword")
    module = snake if snake.startswith("t2i_") else f"t2i_{snake}"
    return {
        "dist": module.replace("_", "-"),
        "module": module,
        "entry": name.replace("_", "-"),
        "component": snake,
        "cls": "".join(p.capitalize() for p in snake.split("_")),
    }


def scaffold_plugin(name: str, kind: str, out_dir: str | Path | None = None) -> Path:
    """Write a plugin package for one component of ``kind``; returns its folder.

    Refuses to write into an existing non-empty folder, so it never overwrites work.
    """
    if kind not in KINDS:
        raise T2IError(f"new-plugin: --kind {kind}: choose one of {', '.join(KINDS)}")
    n = names_for(name)
    root = Path(out_dir) if out_dir is not None else Path(n["dist"])
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise T2IError(f"new-plugin: {root} exists and is not empty; choose another --out")
    pkg = root / "src" / n["module"]
    fields = dict(n, kind=kind, impl=kind, hook=HOOKS[kind], summary=SUMMARIES[kind])
    fields["recipe_path"] = f"src/{n['module']}/recipes/demo.yaml"
    fields["stage"] = Template(STAGE_SLOTS[kind]).substitute(component=n["component"])
    static = kind == "stage"  # a stage states its output side, so `validate` builds nothing
    fields["static_import"] = ", out_resolution" if static else ""
    fields["static"] = "\n            out_resolution=out_resolution," if static else ""
    files = {
        root / "pyproject.toml": "pyproject.toml",
        root / "README.md": "README.md",
        pkg / "__init__.py": "__init__.py",
        pkg / "params.py": f"params_{kind}.py",
        pkg / f"{kind}.py": f"{kind}.py",
        pkg / "recipes" / "demo.yaml": "demo.yaml",
        root / "tests" / f"test_{n['component']}.py": "test.py",
    }
    for path, name_ in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template(name_).substitute(fields), encoding="utf-8")
    return root
