"""Load a trained run and generate images from captions, in a few lines of Python::

from t2i_stages.api import load_run
run = load_run("runs/grgan")
out = run.generate(["a large red circle in the middle"], seed=0)
out.images[-1]            # (1, 3, H, W) in [-1, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .build import assemble
from .checkpoint import latest_good_checkpoint
from .errors import T2IError
from .recipe import Recipe
from .recipe.sources import RecipeSources, read_recipe_file
from .recipe.validate import validate_recipe
from .registry import Registry, load_registry
from .types import GeneratorOutput, TextFeatures


def read_run_recipe(run_dir: Path) -> RecipeSources:
    """A run folder's ``recipe.resolved.yaml``, read as any recipe is (damage is a located
    one-line error naming the file), without its record of plugin versions."""
    path = Path(run_dir) / "recipe.resolved.yaml"
    if not path.is_file():
        raise T2IError(f"{run_dir}: not a run folder (no recipe.resolved.yaml)")
    sources = read_recipe_file(path)
    sources.data.pop("plugins", None)
    return sources


def load_run_recipe(run_dir: Path, registry: Registry) -> Recipe:
    """A run folder's recipe, validated against the installed plugins."""
    return validate_recipe(read_run_recipe(run_dir), registry)


@dataclass
class LoadedRun:
    """A trained generator (the EMA copy, eval mode) with its frozen text encoder and vocabulary."""

    recipe: Recipe
    registry: Registry
    generator: torch.nn.Module
    text_encoder: Any
    vocab: Any
    device: torch.device
    step: int
    matcher: Any = None  # the run's matcher with its trained weights (None without one)

    @property
    def max_words(self) -> int:
        params = self.recipe.data.dataset.resolved
        return int(getattr(params, "max_words", 18))

    def tokenize(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, masks = zip(*(self.vocab.encode(c, self.max_words) for c in captions), strict=True)
        tokens = torch.as_tensor([list(i) for i in ids], dtype=torch.int64)
        mask = torch.as_tensor([list(m) for m in masks], dtype=torch.bool)
        return tokens.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def encode(self, captions: list[str]) -> TextFeatures:
        tokens, mask = self.tokenize(captions)
        # with the ids, as training hands them to the discriminators (``TextFeatures.tokens``)
        return self.text_encoder.encode_text(tokens, mask)._replace(tokens=tokens)

    @torch.no_grad()
    def generate(
        self,
        captions: list[str],
        seed: int = 0,
        z: torch.Tensor | None = None,
        eps: torch.Tensor | None = None,
    ) -> GeneratorOutput:
        """One image per caption; noise from ``seed`` unless ``z``/``eps`` are given."""
        g = torch.Generator().manual_seed(seed)
        b = len(captions)
        G = self.generator
        if z is None:
            z = torch.randn(b, G.z_dim, generator=g)
        if eps is None and G.eps_dim:
            eps = torch.randn(b, G.eps_dim, generator=g)
        text = self.encode(captions)
        eps = eps.to(self.device) if eps is not None else None
        return G(z.to(self.device), eps, text)


def load_run(
    run_dir: str | Path,
    device: str = "cpu",
    registry: Registry | None = None,
    checkpoint: str | Path | None = None,
    ema: bool = True,
) -> LoadedRun:
    """Rebuild a run's generator and text encoder from its newest good checkpoint."""
    from .text import load_tokenizer

    run_dir = Path(run_dir)
    registry = registry or load_registry()
    recipe = load_run_recipe(run_dir, registry)
    if checkpoint is not None:
        from .checkpoint import load_checkpoint

        ckpt = load_checkpoint(Path(checkpoint))
    else:
        ckpt = latest_good_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise T2IError(f"{run_dir / 'checkpoints'}: no usable checkpoint")
    if "generator" not in ckpt.components:
        raise T2IError(
            f"{ckpt.path}: holds no generator, only {', '.join(sorted(ckpt.components))} (an "
            "imported matcher, say): start a run from it with train.init_from, or load its "
            "matcher.safetensors with matcher.params.pretrain.weights"
        )
    vocab_path = run_dir / "vocab.json"
    if not vocab_path.is_file():
        raise T2IError(f"{vocab_path}: missing (the run's vocabulary)")
    vocab = load_tokenizer(vocab_path)
    dev = torch.device(device)
    parts = ["generator", "matcher", "text_encoder"]
    built = assemble(recipe, registry, parts=parts, vocab=vocab, device=dev)
    G = built.generator
    key = "generator_ema" if ema and "generator_ema" in ckpt.components else "generator"
    G.load_state_dict(ckpt.components[key])
    G = G.to(dev).eval().requires_grad_(False)
    matcher = built.matcher
    if matcher is not None and ("matcher" in ckpt.components or recipe.text_encoder is None):
        if "matcher" not in ckpt.components:  # the matcher gives the text features
            raise T2IError(f"{ckpt.path}: the checkpoint holds no matcher weights")
        if set(ckpt.components["matcher"]) - set(matcher.state_dict()):
            raise T2IError(f"{ckpt.path}: matcher weights do not fit the recipe's matcher")
        matcher.load_state_dict(ckpt.components["matcher"], strict=False)
        if hasattr(matcher, "trained"):
            matcher.trained = True
    if matcher is not None:
        matcher = matcher.to(dev).eval().requires_grad_(False)
    enc = built.text_encoder if recipe.text_encoder is not None else matcher
    if recipe.text_encoder is not None and "text_encoder" in ckpt.components:
        enc.load_state_dict(ckpt.components["text_encoder"])
    enc = enc.to(dev).eval().requires_grad_(False)
    step = int(ckpt.state.get("step", 0))
    return LoadedRun(recipe, registry, G, enc, vocab, dev, step, matcher)
