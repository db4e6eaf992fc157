"""The reference side of an evaluation of given images (``t2i-stages eval --images``): a
recipe's or a trained run's test split, at the generator's last resolution, with its matcher,
its vocabulary and the recipe whose ``eval`` section and dataset metrics apply."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import T2IError


@dataclass
class Reference:
    """The reference side of an evaluation of given images: a recipe's or a run's."""

    recipe: Any
    test: Any
    matcher: Any
    vocab: Any
    resolution: int
    train_data_fn: Callable[[], Any]
    info: dict[str, Any]
    matcher_report: dict | None = None


def load_reference(
    recipe: str | Path | Any | None,
    overrides: Sequence[str],
    run: str | Path | None,
    checkpoint: str | Path | None,
    registry: Any,
    device: torch.device,
    log: Callable[[str], None],
) -> Reference:
    """The test split (at the generator's last resolution), the matcher and the recipe that
    ``evaluate_images`` scores against: a trained run's, or a recipe's (its matcher prepared
    as a run prepares it: pretrained, or from the pretraining cache)."""
    from ..build import assemble
    from ..recipe import Recipe, load_recipe
    from ..recipe.semantic import static_resolutions

    if run is not None:
        from ..api import load_run

        loaded = load_run(run, device=str(device), registry=registry, checkpoint=checkpoint)
        rec, matcher, vocab = loaded.recipe, loaded.matcher, loaded.vocab
        res = [int(r) for r in getattr(loaded.generator, "resolutions", []) or []]
        data = assemble(rec, registry, parts=["data"], splits=["test"], resolutions=res)
        info: dict[str, Any] = {"run": str(run), "step": loaded.step}
        made = "the run's trained matcher"
    else:
        if isinstance(recipe, Recipe):
            rec, info = recipe, {"recipe": recipe.name}
        else:
            rec = load_recipe(str(recipe), list(overrides), registry, build=False)
            info = {"recipe": str(recipe), "overrides": list(overrides)}
        res = static_resolutions(rec, registry)
        if res is None:  # a generator that cannot tell its stages without being built
            res = assemble(rec, registry, parts=["generator"]).resolutions
        splits = ["train", "test"] if rec.matcher is not None else ["test"]
        data = assemble(
            rec, registry, parts=["data", "matcher"], splits=splits, resolutions=res,
            device=device, log=log,
        )  # fmt: skip
        matcher, vocab = data.matcher, data.vocab
        made = "the recipe's matcher, prepared as a run prepares it (pretrained or cached)"
    if not res:
        raise T2IError(f"{info.get('run', info.get('recipe'))}: the generator has no stages")
    test = data.test_data

    def train_data() -> Any:
        if data.train_data is not None:
            return data.train_data
        return assemble(rec, registry, parts=["data"], splits=["train"], resolutions=res).train_data

    info.update(
        dataset=rec.data.dataset.type,
        split="test",
        test_images=len(test),
        resolution=res[-1],
        matcher=f"{rec.matcher.type}: {made}" if matcher is not None else None,
    )
    report = data.matcher_report if run is None else None
    return Reference(rec, test, matcher, vocab, res[-1], train_data, info, report)
