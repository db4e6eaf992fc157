"""End-of-run evaluation: generate for held-out captions and score what the recipe asks for.

Until the metric plugins cover more, the built-in shapes dataset is scored by its oracle
(attribute accuracy of generated images against each caption's ground truth).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("t2i-stages", "torch", "torchvision"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


@torch.no_grad()
def generate_for_test(trainer, num_samples: int, batch_size: int, seed: int = 100):
    """Yield (batch, generator output) for the first ``num_samples`` test images, fixed noise."""
    ds = trainer.c.test_data
    n = min(num_samples, len(ds))
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(0)
    loader = DataLoader(
        Subset(ds, range(n)), batch_size=batch_size, collate_fn=getattr(ds, "collate", None)
    )
    g = torch.Generator().manual_seed(seed)
    G = trainer.sampler_generator
    for batch in loader:
        b = batch["tokens"].shape[0]
        z = torch.randn(b, G.z_dim, generator=g)
        eps = torch.randn(b, G.eps_dim, generator=g) if G.eps_dim else None
        yield batch, trainer.generate(batch, z, eps)


def attribute_accuracy(trainer, num_samples: int, batch_size: int) -> dict[str, Any] | None:
    """The shapes oracle's reading of generated images (None for other datasets)."""
    ds = trainer.c.test_data
    try:
        from t2i_stages.plugins.datasets.oracle import load_oracle, score_predictions
        from t2i_stages.plugins.datasets.shapes import ShapesDataset
    except ImportError:
        return None
    if not isinstance(ds, ShapesDataset):
        return None
    oracle = load_oracle(ds).to(trainer.rt.device)
    preds, attrs, real_preds = [], [], []
    for batch, out in generate_for_test(trainer, num_samples, batch_size):
        preds.append(oracle.predict(out.images[-1].float()).cpu())
        attrs.append(batch["attributes"])
        real_preds.append(oracle.predict(batch["images"][-1].to(trainer.rt.device)).cpu())
    attrs_t = torch.cat(attrs)
    grid = oracle.params.grid if hasattr(oracle, "params") else ds.params.grid
    fake = score_predictions(torch.cat(preds), attrs_t, grid)
    real = score_predictions(torch.cat(real_preds), attrs_t, grid)
    return {"generated": fake, "real_images": real, "oracle": getattr(oracle, "info", {})}


def evaluate_run(trainer, out_dir: Path) -> dict[str, Any]:
    """Write ``metrics.json`` (with the protocol) for a trained run and return it."""
    cfg = trainer.recipe.eval
    start = time.time()
    results: dict[str, Any] = {}
    acc = (
        attribute_accuracy(trainer, cfg.num_samples, cfg.batch_size)
        if cfg.attribute_accuracy
        else None
    )
    if acc is not None:
        results["attribute_accuracy"] = acc
    if trainer.c.matcher_report:
        results["matcher"] = trainer.c.matcher_report
    metrics = {
        "step": trainer.step,
        "results": results,
        "protocol": {
            "num_samples": min(cfg.num_samples, len(trainer.c.test_data)),
            "split": "test",
            "noise_seed": 100,
            "generator": "ema" if trainer.ema is not None else "raw",
            "caption_draw": "epoch 0 of the test split",
            "versions": _versions(),
            "seconds": round(time.time() - start, 2),
        },
    }
    (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    return metrics
