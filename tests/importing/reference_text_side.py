"""Helpers of the DF-GAN and GR-GAN golden tests: the reference fixtures, the text-side run an
import of them needs (the fixtures hold no text encoder), and rebuilding an imported run with
its recipe changed (to pin a quirk switch both ways)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from t2i_stages.build import assemble
from t2i_stages.checkpoint import latest_good_checkpoint, save_checkpoint
from t2i_stages.recipe import load_recipe
from t2i_stages.seeding import rng_state
from t2i_stages.training.run_folder import write_resolved_recipe
from t2i_stages.types import TextFeatures

REFERENCE = Path(__file__).parents[1] / "fixtures" / "reference"
DFGAN = REFERENCE / "dfgan"
GRGAN = REFERENCE / "grgan"
TOL = 1e-5


def io_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "io.safetensors"))


def text_side_run(
    registry: Any, out: Path, recipe: str, overrides: list[str], seed: int = 0
) -> Path:
    """A run folder holding only a text side (the ``matcher`` of ``recipe`` with
    ``overrides``), randomly initialised and saved as a run saves it; returns its
    ``recipe.resolved.yaml``, the file an import names it by."""
    from t2i_stages.plugins.datasets.shapes import shapes_vocab

    torch.manual_seed(seed)
    rec = load_recipe(recipe, overrides, registry)
    vocab = shapes_vocab()
    matcher = registry.build("matcher", rec.matcher, vocab=vocab, vocab_size=len(vocab))
    out.mkdir(parents=True)
    write_resolved_recipe(rec, registry, out, header="a text side for the import tests")
    vocab.save(out / "vocab.json")
    state = {"epoch": 0, "batch_in_epoch": 0}
    text = (out / "recipe.resolved.yaml").read_text()
    comps = {"matcher": matcher.trainable_state_dict()}
    save_checkpoint(out / "checkpoints", 0, comps, {}, rng_state(), state, text)
    return out / "recipe.resolved.yaml"


def rebuild(run: Path, registry: Any, overrides: list[str] = (), load_ds: bool = True) -> Any:
    """The imported run's generator and discriminators, built from its import recipe with
    ``overrides`` and loaded with its checkpoint (a switch changes no key), in eval mode;
    ``load_ds=False`` leaves the discriminators as built."""
    recipe = load_recipe(run / "import.recipe.yaml", list(overrides), registry)
    built = assemble(recipe, registry, parts=["generator", "discriminators"], log=lambda m: None)
    ckpt = latest_good_checkpoint(run / "checkpoints")
    built.generator.load_state_dict(ckpt.components["generator"])
    for i, d in enumerate(built.discriminators):
        if load_ds and f"discriminator_{i}" in ckpt.components:
            d.load_state_dict(ckpt.components[f"discriminator_{i}"])
    built.generator.eval()
    for d in built.discriminators:
        d.eval()
    return built


def text_features(sentence: torch.Tensor, words: torch.Tensor, real: torch.Tensor) -> TextFeatures:
    """The project's text features from the fixture's tensors (``real``: True = real word)."""
    return TextFeatures(words, sentence, real, real.sum(1))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a.double() - b.double()).abs().max())
