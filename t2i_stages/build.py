"""Build a recipe's components from the registry (the Python API behind `run`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import T2IError
from .recipe import Recipe, resolved_recipe
from .registry import Registry


def build_components(recipe: Recipe, registry: Registry, split: str = "train") -> dict[str, Any]:
    """Build every component the recipe names, untrained, keyed by recipe path.

    The generator comes first: its stage resolutions decide the dataset's image sizes and each
    discriminator's input size; the dataset's vocabulary sizes the text side. Training
    (``t2i_stages.training``) builds the same components, and also pretrains the matcher.
    """
    out: dict[str, Any] = {}
    out["generator"] = registry.build("generator", recipe.generator)
    resolutions = list(getattr(out["generator"], "resolutions", []) or [])
    data_ctx: dict[str, Any] = {"split": split}
    if resolutions:
        data_ctx["resolutions"] = resolutions
    out["dataset"] = registry.build("dataset", recipe.data.dataset, **data_ctx)
    ctx: dict[str, Any] = {}
    vocab = getattr(out["dataset"], "vocab", None)
    if vocab is not None:
        ctx = {"vocab": vocab, "vocab_size": len(vocab)}
    if recipe.text_encoder is not None:
        out["text_encoder"] = registry.build("text_encoder", recipe.text_encoder, **ctx)
    if recipe.matcher is not None:
        out["matcher"] = registry.build("matcher", recipe.matcher, **ctx)
    for i, slot in enumerate(recipe.discriminators):
        res = {"resolution": resolutions[i]} if i < len(resolutions) else {}
        out[f"discriminators.{i}"] = registry.build("discriminator", slot, stage=i, **res)
    for i, slot in enumerate(recipe.losses):
        out[f"losses.{i}"] = registry.build("loss", slot)
    for i, slot in enumerate(recipe.eval.metrics):
        out[f"eval.metrics.{i}"] = registry.build("metric", slot)
    if recipe.export is not None:
        out["export"] = registry.build("exporter", recipe.export)
    return out


def write_resolved_recipe(
    recipe: Recipe,
    registry: Registry,
    out_dir: str | Path,
    runtime: dict[str, Any] | None = None,
    header: str = "",
) -> Path:
    """Write ``recipe.resolved.yaml`` (every default filled in, plugin versions, the run's
    ``auto`` decisions) into ``out_dir``; ``header`` lines go on top as YAML comments."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "recipe.resolved.yaml"
        data = json.loads(json.dumps(resolved_recipe(recipe, registry, runtime)))  # plain types
        tmp = path.with_suffix(".yaml.tmp")
        comments = "".join(f"# {line}\n" for line in header.splitlines())
        tmp.write_text(comments + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise T2IError(f"{out_dir}: cannot write the run folder: {exc.strerror or exc}") from None
    return path
