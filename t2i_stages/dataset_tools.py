"""What a dataset holds, for a person to look at: ``t2i-stages data preview`` and ``data stats``.

::

    ds = dataset_from_recipe("recipes/demo.yaml", split="train")   # only the data section is checked
    preview_grid(ds, "grid.png", count=16)                        # images with their captions
    dataset_stats(ds)                                             # counts, vocabulary, caption lengths
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .build import assemble
from .errors import T2IError
from .recipe import load_recipe
from .registry import Registry, load_registry
from .text import tokenize
from .training.visuals import label_font


def dataset_from_recipe(
    recipe: str | Path,
    split: str = "train",
    overrides: list[str] | tuple[str, ...] = (),
    resolutions: list[int] | None = None,
    registry: Registry | None = None,
) -> Any:
    """Build the dataset a recipe's ``data.dataset`` names, validating only the ``data`` section.

    Errors are ``RecipeError`` lines with ``file:line`` like the full validation gives.
    """
    registry = registry or load_registry()
    partial = load_recipe(recipe, overrides, registry, only=("data",))
    built = assemble(partial, registry, parts=["data"], splits=[split], resolutions=resolutions)
    return built.datasets[split]


def preview_grid(
    dataset: Any,
    out: str | Path,
    count: int = 16,
    columns: int = 4,
    resolution: int | None = None,
    start: int = 0,
) -> Path:
    """Save a grid of ``count`` samples (images with their drawn captions) as a PNG."""
    if count < 1:
        raise T2IError("preview: count must be at least 1")
    count = min(count, len(dataset))
    res_list = list(dataset.resolutions)
    r = resolution or res_list[-1]
    if r not in res_list:
        raise T2IError(f"preview: resolution {r} is not one of the dataset's {res_list}")
    k = res_list.index(r)
    cell = max(r, 192)
    font = label_font(11)
    lines_per = 4
    text_h = 14 * lines_per + 6
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    canvas = Image.new(
        "RGB", (columns * (cell + 8) + 8, rows * (cell + text_h + 8) + 8), (255, 255, 255)
    )
    draw = ImageDraw.Draw(canvas)
    width_chars = max(16, cell // 6)
    for n in range(count):
        i = (start + n) % len(dataset)
        s = dataset[i]
        img = s["images"][k].clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).numpy()
        tile = Image.fromarray(np.ascontiguousarray(img))
        if r != cell:
            tile = tile.resize((cell, cell), Image.NEAREST if r < cell else Image.BILINEAR)
        x = 8 + (n % columns) * (cell + 8)
        y = 8 + (n // columns) * (cell + text_h + 8)
        canvas.paste(tile, (x, y))
        lines = textwrap.wrap(f"[{i}] {s['caption']}", width_chars)[:lines_per]
        for j, line in enumerate(lines):
            draw.text((x, y + cell + 3 + 14 * j), line, fill=(0, 0, 0), font=font)
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out


def dataset_stats(dataset: Any) -> dict[str, Any]:
    """Counts, vocabulary size and caption lengths of a dataset split (text only, no images read)."""
    n = len(dataset)
    per_image = np.array([len(dataset.captions(i)) for i in range(n)], dtype=np.int64)
    lengths = np.array(
        [len(tokenize(c)) for i in range(n) for c in dataset.captions(i)], dtype=np.int64
    )
    unknown = 0
    vocab = dataset.vocab
    if hasattr(vocab, "stoi"):
        unknown = sum(
            1
            for i in range(n)
            for c in dataset.captions(i)
            for w in tokenize(c)
            if w not in vocab.stoi
        )
    stats: dict[str, Any] = {
        "dataset": getattr(dataset, "name", type(dataset).__name__),
        "split": dataset.split,
        "images": n,
        "captions": int(per_image.sum()),
        "captions_per_image": {
            "min": int(per_image.min()),
            "mean": round(float(per_image.mean()), 3),
            "max": int(per_image.max()),
        },
        "vocab_size": int(len(vocab)),
        "unknown_words": int(unknown),
        "caption_words": {
            "min": int(lengths.min()),
            "mean": round(float(lengths.mean()), 3),
            "p50": int(np.percentile(lengths, 50)),
            "p95": int(np.percentile(lengths, 95)),
            "max": int(lengths.max()),
        },
        "max_words": int(dataset.max_words),
        "captions_over_max_words": round(float((lengths > dataset.max_words).mean()), 5),
        "resolutions": list(dataset.resolutions),
    }
    if hasattr(dataset, "skipped"):
        stats["skipped_bad_samples"] = int(dataset.skipped)
    classes = {int(dataset.class_id(i, 0)) for i in range(n)}
    stats["classes"] = len(classes - {-1})
    if hasattr(dataset, "objects"):
        counts = (np.asarray(dataset.objects)[:, :, 0] == 1).sum(axis=1)
        stats["objects_per_image"] = {
            str(k): int((counts == k).sum()) for k in sorted(set(counts.tolist()))
        }
        stats["cache"] = str(dataset.cache_path)
    return stats


def format_stats(stats: dict[str, Any]) -> str:
    """Readable lines for ``data stats``."""
    lines = []
    for key, value in stats.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"{key:>24}: {value}")
    return "\n".join(lines)
