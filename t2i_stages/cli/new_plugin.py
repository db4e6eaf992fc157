"""`t2i-stages new-plugin NAME --kind fusion`: scaffold a pip-installable plugin package.

The Python API is :func:`scaffold_plugin`. The package it writes works as generated: its entry
point registers one component of the chosen kind, a tiny recipe on the built-in shapes dataset
uses it, and its tests check that the registry lists it, that the recipe validates and that the
component builds and runs. A researcher then edits the one module that holds the component.
"""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path

from ..errors import T2IError

KINDS = ("fusion", "stage", "conditioning")

_NAME = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A t2i-stages {kind} plugin: {component}."
requires-python = ">=3.10"
dependencies = ["t2i-stages"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This line is the whole registration: t2i-stages loads every entry point of this group.
[project.entry-points.t2i_stages]
{entry} = "{module}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
"*" = ["*.yaml"]
"""

README = """\
# {dist}

A [t2i-stages](https://example.invalid/t2i-stages) plugin that adds the {kind} component
`{component}`.

```bash
pip install -e .                      # registers the entry point '{entry}'
t2i-stages plugins --kind {kind}      # lists {component}
t2i-stages validate src/{module}/recipes/demo.yaml
t2i-stages run src/{module}/recipes/demo.yaml --set train.max_steps=20
pytest tests
```

Edit `src/{module}/{impl}.py`: the params model (every field documented: the JSON schema and
docs are generated from it), the module, and the factory `build_{component}`. See
docs/writing-a-plugin.md in t2i-stages.
"""

INIT = '''\
"""{dist}: registers the {kind} component '{component}' with t2i-stages."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec

from . import {impl}


@hookimpl
def {hook}() -> dict[str, ComponentSpec]:
    return {{
        "{component}": ComponentSpec(
            {impl}.build_{component},
            {impl}.{cls}Params,
            "{summary}",
        )
    }}
'''

FUSION = '''\
"""A fusion block: mixes the text its stage's conditioning level gives into image features.

Contract (t2i_stages.plugins.fusion): built with ``channels`` (image channels C) and
``text_dim`` (size D of the conditioning's features); ``forward(h (B, C, H, W), cond)`` returns
``FusionOutput(features (B, out_channels, H, W), attention (B, T, H, W) or None)``;
``requires`` says whether it needs a word sequence or a vector; ``out_channels`` is the width the
stage's residual blocks run at.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from t2i_stages.plugins.common import Condition, FusionOutput, masked_softmax
from torch import nn

from t2i_stages.spec import Params


class {cls}Params(Params):
    """Scaled dot-product attention from pixels to words, added to h through a learned gate."""

    gate_init: float = Field(
        0.0, description="Initial value of the gate's bias (sigmoid(0) = half the context)."
    )


class {cls}(nn.Module):
    """``h + sigmoid(gate(h)) * context``, context = attention-weighted projected words."""

    requires = "sequence"

    def __init__(self, channels: int, text_dim: int, gate_init: float = 0.0):
        super().__init__()
        self.out_channels = channels
        self.query = nn.Conv2d(channels, channels, 1, bias=False)
        self.key = nn.Linear(text_dim, channels, bias=False)
        self.value = nn.Linear(text_dim, channels, bias=False)
        self.gate = nn.Conv2d(channels, channels, 1)
        nn.init.constant_(self.gate.bias, gate_init)

    def forward(self, h: torch.Tensor, cond: Condition) -> FusionOutput:
        b, c, height, width = h.shape
        words = cond.words.transpose(1, 2)  # (B, T, D)
        q = self.query(h).reshape(b, c, height * width).transpose(1, 2)  # (B, N, C)
        k, v = self.key(words), self.value(words)  # (B, T, C)
        scores = torch.bmm(q, k.transpose(1, 2)) / c**0.5  # (B, N, T)
        mask = cond.mask.unsqueeze(1).expand_as(scores) if cond.mask is not None else None
        attn = masked_softmax(scores, mask, dim=2)
        context = torch.bmm(attn, v).transpose(1, 2).reshape(b, c, height, width)
        out = h + torch.sigmoid(self.gate(h)) * context
        return FusionOutput(out, attn.transpose(1, 2).reshape(b, -1, height, width))


def build_{component}(
    params: {cls}Params, channels: int | None = None, text_dim: int | None = None, **ctx: Any
) -> {cls}:
    if channels is None or text_dim is None:
        raise ValueError("fusion '{component}' needs channels and text_dim from its stage")
    return {cls}(channels, text_dim, params.gate_init)
'''

STAGE = '''\
"""A refinement stage: fuse text into the previous stage's features, refine, upsample x2.

Contract (t2i_stages.plugins.stages): built with ``channels`` (gf), ``text_dim``,
``in_channels`` and ``in_resolution`` (None for a first stage); ``forward(h, text, z, eps)``
returns ``StageOutput(features, attention, mu, logvar)`` and the module exposes
``out_channels``, ``out_resolution`` and ``eps_dim``. The conditioning level and the fusion block
are slots, so recipes can swap them.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from t2i_stages.plugins.common import ResBlock, StageOutput, UpBlock
from torch import nn

from t2i_stages.recipe.slots import ConditioningSlot, FusionSlot
from t2i_stages.spec import Params
from t2i_stages.types import TextFeatures


class {cls}Params(Params):
    """Fusion -> ``residual_blocks`` ResBlocks -> upBlock, with a skip of the upsampled input."""

    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="words"),
        description="What text the fusion block sees.",
    )
    fusion: FusionSlot = Field(
        default_factory=lambda: FusionSlot(type="word_attention"),
        description="How text is mixed into the image features.",
    )
    residual_blocks: int = Field(1, ge=0, description="ResBlocks after the fusion.")


class {cls}(nn.Module):
    """``up(res(fusion(h))) + up_skip(h)``: the skip keeps the coarse image when text is weak."""

    def __init__(self, cond, fusion, in_channels, out_channels, residual_blocks, in_resolution):
        super().__init__()
        self.conditioning, self.fusion = cond, fusion
        width = fusion.out_channels
        self.residual = nn.Sequential(*[ResBlock(width) for _ in range(residual_blocks)])
        self.up = UpBlock(width, out_channels)
        self.skip = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )
        self.out_channels = out_channels
        self.out_resolution = None if in_resolution is None else 2 * in_resolution
        self.eps_dim = getattr(cond, "eps_dim", 0)

    def forward(self, h, text: TextFeatures, z: torch.Tensor, eps=None) -> StageOutput:
        cond = self.conditioning(text, eps)
        fused, attention = self.fusion(h, cond)
        out = self.up(self.residual(fused)) + self.skip(h)
        return StageOutput(out, attention, cond.mu, cond.logvar)


def build_{component}(
    params: {cls}Params,
    registry: Any = None,
    channels: int | None = None,
    text_dim: int | None = None,
    in_channels: int | None = None,
    in_resolution: int | None = None,
    **ctx: Any,
) -> {cls}:
    if in_channels is None or text_dim is None:
        raise ValueError("stage '{component}' needs a previous stage (it cannot be the first)")
    cond = registry.build("conditioning", params.conditioning, text_dim=text_dim)
    fusion = registry.build("fusion", params.fusion, channels=in_channels, text_dim=cond.dim)
    out = channels or in_channels
    return {cls}(cond, fusion, in_channels, out, params.residual_blocks, in_resolution)
'''

CONDITIONING = '''\
"""A conditioning level: chooses which text a stage's fusion block or a discriminator sees.

Contract (t2i_stages.plugins.conditioning): built with ``text_dim``; ``forward(text, eps)``
returns a ``Condition`` (a vector (B, C), or words (B, C, T) with a mask); the module exposes
``provides`` ("vector" or "sequence"), ``dim`` and ``eps_dim``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from t2i_stages.plugins.common import Condition
from torch import nn

from t2i_stages.spec import Params
from t2i_stages.types import TextFeatures


class {cls}Params(Params):
    """The sentence mixed into every word: words + weight * sentence, with the caption's mask."""

    weight: float = Field(0.5, description="How much of the sentence is added to each word.")


class {cls}(nn.Module):
    provides = "sequence"
    eps_dim = 0

    def __init__(self, text_dim: int, weight: float):
        super().__init__()
        self.dim = text_dim
        self.weight = weight

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        words = text.words + self.weight * text.sentence.unsqueeze(2)
        return Condition(words=words * text.mask.unsqueeze(1).to(words.dtype), mask=text.mask)


def build_{component}(params: {cls}Params, text_dim: int | None = None, **ctx: Any) -> {cls}:
    if text_dim is None:
        raise ValueError("conditioning '{component}' needs text_dim")
    return {cls}(text_dim, params.weight)
'''

IMPLS = {"fusion": FUSION, "stage": STAGE, "conditioning": CONDITIONING}
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
    "fusion": "{{type: refine, params: {{fusion: {{type: {c}}}, residual_blocks: 1}}}}",
    "stage": "{{type: {c}, params: {{fusion: {{type: word_attention}}}}}}",
    "conditioning": (
        "{{type: refine, params: {{conditioning: {{type: {c}}}, fusion: {{type: dynamic_memory}}, "
        "residual_blocks: 1}}}}"
    ),
}

RECIPE = """\
# A tiny run on the built-in shapes dataset whose last stage uses '{component}'.
# t2i-stages run {recipe_path} --set train.max_steps=20
name: {component}-demo
seed: 0
data:
  dataset:
    type: shapes
    params: {{train_size: 256, test_size: 64, resolutions: [16, 32], max_objects: 1}}
  batch_size: 16
matcher:
  type: damsm
  params:
    text_dim: 32
    embedding_dim: 32
    small_cnn: {{image_size: 32, width: 16}}
    pretrain: {{steps: 50, max_minutes: 1, batch_size: 16, eval_samples: 64}}
generator:
  type: stagewise
  params:
    text_dim: 32
    z_dim: 16
    gf: 16
    stages:
      - type: initial
        params: {{conditioning: {{type: ca, params: {{c_dim: 16}}}}, upsamples: 2}}
      - {stage}
discriminators:
  - {{type: stagewise, params: {{df: 8, text_dim: 32, norm: spectral, conditioning: {{type: sentence}}}}}}
  - {{type: stagewise, params: {{df: 8, text_dim: 32, norm: spectral, conditioning: {{type: sentence}}}}}}
losses:
  - type: bce_mismatch
  - type: ca_kl
  - {{type: sentence_matching, stages: [1], weight: 1.0}}
train:
  max_steps: 200
  log_every: 10
  sample_every: 100
  ckpt_every: 100
eval:
  num_samples: 64
  batch_size: 32
  attribute_accuracy: false
"""

TEST = '''\
"""Tests of the {component} plugin: registration, recipe validation, build and forward pass."""

from __future__ import annotations

from pathlib import Path

import torch

from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry
from t2i_stages.types import TextFeatures

RECIPE = Path(__file__).parents[1] / "src" / "{module}" / "recipes" / "demo.yaml"


def _text(batch: int = 2, dim: int = 32, words: int = 5) -> TextFeatures:
    mask = torch.ones(batch, words, dtype=torch.bool)
    mask[0, 3:] = False  # a padded caption
    lengths = mask.sum(1)
    return TextFeatures(torch.randn(batch, dim, words), torch.randn(batch, dim), mask, lengths)


def test_the_entry_point_registers_the_component():
    reg = load_registry()
    entry = reg.get("{kind}", "{component}")
    assert entry.plugin.package == "{dist}" and not entry.plugin.builtin


def test_the_demo_recipe_validates_and_its_generator_runs():
    reg = load_registry()
    recipe = load_recipe(RECIPE, [], reg)
    gen = reg.build("generator", recipe.generator)
    text = _text()
    out = gen(torch.randn(2, gen.z_dim), torch.randn(2, gen.eps_dim), text)
    assert [tuple(i.shape) for i in out.images] == [(2, 3, 16, 16), (2, 3, 32, 32)]
    assert all(torch.isfinite(i).all() for i in out.images)
    out.images[-1].mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.stages[1].parameters())
'''


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
    impl = {"fusion": "fusion", "stage": "stage", "conditioning": "conditioning"}[kind]
    fields = dict(n, kind=kind, impl=impl, hook=HOOKS[kind], summary=SUMMARIES[kind])
    pkg = root / "src" / n["module"]
    recipe_path = f"src/{n['module']}/recipes/demo.yaml"
    files = {
        root / "pyproject.toml": PYPROJECT.format(**fields),
        root / "README.md": README.format(**fields),
        pkg / "__init__.py": INIT.format(**fields),
        pkg / f"{impl}.py": IMPLS[kind].format(**fields),
        pkg / "recipes" / "demo.yaml": RECIPE.format(
            component=n["component"],
            recipe_path=recipe_path,
            stage=STAGE_SLOTS[kind].format(c=n["component"]),
        ),
        root / "tests" / f"test_{n['component']}.py": TEST.format(**fields),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "new-plugin",
        help="scaffold a pip-installable plugin package (fusion block, stage, conditioning)",
        description="Write a plugin package: pyproject.toml with the t2i_stages entry point, a "
        "working component of the chosen kind to edit, a tiny recipe that uses it and tests. "
        "Then `pip install -e FOLDER` and it appears in `t2i-stages plugins`.",
    )
    p.add_argument("name", help="plugin name, e.g. gated-attention (component gated_attention)")
    p.add_argument(
        "--kind", choices=KINDS, default="fusion", help="component kind (default fusion)"
    )
    p.add_argument("--out", type=Path, default=None, help="folder (default ./t2i-<name>)")
    p.set_defaults(func=_new_plugin)


def _new_plugin(args: argparse.Namespace) -> int:
    root = scaffold_plugin(args.name, args.kind, args.out)
    n = names_for(args.name)
    print(f"wrote {root}/ (component {args.kind} '{n['component']}', package {n['dist']})")
    print(f"next: pip install -e {root} && t2i-stages plugins --kind {args.kind}")
    return 0
