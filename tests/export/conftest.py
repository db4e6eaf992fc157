"""Fixtures for the export tests: demo-size exports and a tiny trained run, made once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from export_helpers import DEMO_EXPORTER, demo_models, micro_models

from t2i_stages.registry import load_registry

MICRO = Path(__file__).resolve().parents[1] / "training" / "micro.yaml"


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@dataclass
class DemoExport:
    name: str
    origin: str
    generator: Any
    encoder: Any
    vocab: Any
    max_words: int
    result: Any

    @property
    def folder(self) -> Path:
        return self.result.folder


@pytest.fixture(scope="session")
def demo_export(registry, tmp_path_factory):
    """demo_export(name) -> DemoExport: the demo recipe's models exported (default params)."""
    from t2i_stages.export.api import export_models

    cache: dict[str, DemoExport] = {}

    def get(name: str) -> DemoExport:
        if name not in cache:
            gen, enc, vocab, max_words, origin = demo_models(registry, name)
            out = tmp_path_factory.mktemp(f"deploy-{name}") / "deploy"
            res = export_models(
                gen,
                enc,
                vocab,
                out,
                max_words,
                source={"recipe": origin},
                exporter=DEMO_EXPORTER[name],
            )
            cache[name] = DemoExport(name, origin, gen, enc, vocab, max_words, res)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def micro_run(registry, tmp_path_factory) -> Path:
    """The micro recipe trained for 2 steps (checkpoint at step 2, no evaluation)."""
    from t2i_stages.recipe import load_recipe
    from t2i_stages.training import train

    recipe = load_recipe(
        MICRO, ["train.max_steps=2", "train.ckpt_every=2", "train.sample_every=100"], registry
    )
    out = tmp_path_factory.mktemp("micro-run")
    train(recipe, registry, out, evaluate=False, log=lambda *a, **k: None)
    return out


# The attention and Triton exports (issue 20): an AttnGAN-style micro generator through the
# default exporter (dynamo), fused, with fp16 graphs; a GR-GAN-style one (dynamic memory over the
# tiled sentence, then over the words) through the legacy tracer, split; a DM-GAN-style one with
# the default params as the unchanged baseline.
MICRO_EXPORTS = {
    "attngan": {"attention": True, "fused": True, "fp16": True, "triton": True},
    "grgan": {"attention": True, "exporter": "torchscript", "triton": True},
    "dmgan": {"exporter": "torchscript"},
}


@pytest.fixture(scope="session")
def micro_export(registry, tmp_path_factory):
    """micro_export(style) -> DemoExport: a micro generator of ``style`` exported with the
    params of MICRO_EXPORTS[style]."""
    from t2i_stages.export.api import export_models

    cache: dict[str, DemoExport] = {}

    def get(style: str) -> DemoExport:
        if style not in cache:
            gen, enc, vocab, max_words = micro_models(registry, style)
            out = tmp_path_factory.mktemp(f"micro-{style}") / "deploy"
            source = {"recipe_name": f"micro-{style}"}
            res = export_models(gen, enc, vocab, out, max_words, source, **MICRO_EXPORTS[style])
            cache[style] = DemoExport(style, "micro", gen, enc, vocab, max_words, res)
        return cache[style]

    return get
