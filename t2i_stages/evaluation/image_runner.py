"""``evaluate_images``: score given images (a folder with captions, ``images.py``) paired with a
recipe's or a run's test split (``image_stream.py``) and its matcher, through the same
``evaluate_stream`` and report as a run's evaluation (the Python API of ``eval --images``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import T2IError
from .context import EvalContext
from .image_stream import ImageStream
from .images import read_image_folder
from .reference import load_reference
from .runner import evaluate_stream, evaluation_folder
from .slots import build_metrics, choose_slots


def evaluate_images(
    images: str | Path,
    captions: str | Path | None = None,
    *,
    recipe: str | Path | Any | None = None,
    overrides: Sequence[str] = (),
    run: str | Path | None = None,
    checkpoint: str | Path | None = None,
    metrics: Iterable[str] | None = None,
    num_samples: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    strict: bool = False,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> dict[str, Any]:
    """Score a folder of images (``t2i-stages eval --images``): another codebase's samples, or
    real images as the floor, with the metrics and the protocol block of a run's evaluation.

    ``images`` is the folder; ``captions`` a JSONL file (``{"image": ..., "caption": ...}`` per
    line, paths relative to the folder), else each image's sidecar ``.txt`` caption (see
    ``evaluation.images``). Bad files are skipped and reported in one ``DataWarning``;
    ``strict`` raises a ``BadDataError`` naming the first instead. ``num_samples`` keeps the
    first N readable images (default: all).

    The reference side comes from exactly one of ``recipe`` (a path with ``--set``-style
    ``overrides``, or a loaded ``Recipe``) and ``run`` (a trained run folder, its trained
    matcher from ``checkpoint`` or the newest good one): the test split each image is paired
    with (``evaluation.image_stream``), whose real images are FD's reference; the matcher
    (FD[matcher], R-precision[run]); the dataset's oracle; the metrics (``metrics``, else the
    recipe's ``eval.metrics``, else the defaults). Images are brought to the reference's
    resolution with the metrics' resizer. Writes metrics.json/.md into ``out_dir``, by default
    a new ``IMAGES/evals/<metrics>-n<N>-<time>/`` (``report["folder"]``).
    """
    if (recipe is None) == (run is None):
        raise T2IError(
            "evaluate_images: give the reference as exactly one of recipe= and run= "
            "(--recipe RECIPE or --run RUN_DIR)"
        )
    if overrides and recipe is None:
        raise T2IError("overrides (--set) change a recipe; a run's recipe is its own")
    folder = read_image_folder(images, captions, strict=strict, limit=num_samples)
    from ..registry import load_registry

    registry = load_registry()
    dev = torch.device(device)
    ref = load_reference(recipe, overrides, run, checkpoint, registry, dev, log)
    bs = batch_size or ref.recipe.eval.batch_size
    stream = ImageStream(folder, ref.test, ref.resolution, bs)
    own = ref.test if stream.pairing.has_truth else None
    if own is None and not metrics and getattr(ref.test, "dataset_metrics", ()):
        log(
            f"eval: {stream.pairing.caption_index.count(None)} captions are not captions of their "
            "paired test image, so there is no ground truth for the dataset's own metrics "
            "(left out)"
        )
    slots = choose_slots(ref.recipe, registry, metrics, ref.matcher is not None, own)
    if not slots:
        raise T2IError("no metrics to compute (give --metrics or the recipe's eval.metrics)")
    built = build_metrics(slots, registry, dev)
    ctx = EvalContext(
        registry=registry,
        device=dev,
        recipe=ref.recipe,
        test_data=ref.test,
        matcher=ref.matcher,
        vocab=ref.vocab,
        train_data_fn=ref.train_data_fn,
        batch_size=bs,
        log=log,
        num_samples=stream.num_samples,
    )
    header: dict[str, Any] = {
        "images": str(folder.root),
        "protocol": {"source": "t2i-stages eval --images", "reference": ref.info},
    }
    if ref.matcher_report:
        header["matcher"] = ref.matcher_report
    n = stream.num_samples
    log(f"eval: scoring {n} images from {folder.root} against the reference's test split")
    out = Path(out_dir) if out_dir else evaluation_folder(folder.root, slots, n, None)
    report = evaluate_stream(ctx, built, stream, out, header, strict=True, progress=progress)
    report["folder"] = str(out)
    return report
