"""The pictures a run writes: caption-annotated sample grids, attention overlays, loss curves."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from ..evaluation.samples import to_uint8


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """(N,3,H,W) in [-1,1] -> (N,H,W,3) uint8 for PIL (the evaluation's rounding)."""
    return to_uint8(images).permute(0, 2, 3, 1).numpy()


def label_font(size: int = 12) -> ImageFont.ImageFont:
    """Pillow's built-in font at ``size`` (a fixed size on Pillow < 10.1): no font file needed."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def caption_grid(
    images: torch.Tensor, captions: list[str], cols: int = 4, cell: int = 160
) -> Image.Image:
    """Images in a grid, each with its caption printed under it."""
    n = images.shape[0]
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    text_h = 44
    font = label_font(11)
    canvas = Image.new("RGB", (cols * cell, rows * (cell + text_h)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, arr in enumerate(to_pixels(images)):
        r, c = divmod(i, cols)
        x, y = c * cell, r * (cell + text_h)
        canvas.paste(
            Image.fromarray(arr).resize((cell - 4, cell - 4), Image.NEAREST), (x + 2, y + 2)
        )
        lines = textwrap.wrap(captions[i] if i < len(captions) else "", width=cell // 6)[:3]
        for j, line in enumerate(lines):
            draw.text((x + 3, y + cell + j * 13), line, fill="black", font=font)
    return canvas


def _heat(weights: np.ndarray) -> np.ndarray:
    """A simple blue-to-red colour map for weights in [0,1]; (H,W) -> (H,W,3) float."""
    w = np.clip(weights, 0, 1)[..., None]
    return np.concatenate([w, 0.2 * np.ones_like(w), 1 - w], axis=-1)


def word_overlays(
    image: torch.Tensor, attention: torch.Tensor, cell: int = 96
) -> list[Image.Image]:
    """One ``cell``-px tile per word: the image half-blended with that word's attention map.

    ``image`` is (3, H, W) in [-1, 1], ``attention`` (T, h, w); all T maps share one scale, so
    words that draw more attention show brighter and a uniform attention shows as a uniform
    tint. The scale is the 99th percentile of the weights, not their maximum: one position
    that puts all its weight on one word would otherwise leave every other map blank.
    """
    pixels = to_pixels(image[None])[0]
    size = image.shape[-1]
    base = np.asarray(Image.fromarray(pixels).resize((cell, cell))).astype(np.float32) / 255
    attention = attention.detach().float().cpu()
    scale = torch.quantile(attention.flatten(), 0.99).clamp_min(1e-8)
    tiles = []
    for a in attention:
        a = F.interpolate(a[None, None], size=(size, size), mode="bilinear", align_corners=False)
        a = (a[0, 0] / scale).clamp(0, 1)
        a = Image.fromarray((a.numpy() * 255).astype(np.uint8)).resize((cell, cell))
        mix = 0.5 * base + 0.5 * _heat(np.asarray(a).astype(np.float32) / 255)
        tiles.append(Image.fromarray((mix * 255).astype(np.uint8)))
    return tiles


def attention_figure(
    images: torch.Tensor, attention: torch.Tensor, words: list[list[str]], cell: int = 96
) -> Image.Image:
    """AttnGAN-style attention display: per sample, the image then one overlay per word.

    ``attention`` is (N, T, h, w) (weights of each word at each image position); the maps of
    one sample share one scale (``word_overlays``).
    """
    n = images.shape[0]
    t = max((len(w) for w in words), default=0)
    font = label_font(11)
    canvas = Image.new("RGB", ((t + 1) * cell, n * (cell + 16)), "white")
    draw = ImageDraw.Draw(canvas)
    imgs = to_pixels(images)
    for i in range(n):
        y = i * (cell + 16)
        canvas.paste(Image.fromarray(imgs[i]).resize((cell, cell), Image.BILINEAR), (0, y + 16))
        draw.text((2, y + 2), "image", fill="black", font=font)
        shown = words[i][:t]
        for j, tile in enumerate(word_overlays(images[i], attention[i, : len(shown)], cell)):
            canvas.paste(tile, ((j + 1) * cell, y + 16))
            draw.text(((j + 1) * cell + 2, y + 2), shown[j][:14], fill="black", font=font)
    return canvas


def loss_curves(history: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """One panel per loss name (step on x), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(history)
    cols = 3
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        steps, values = zip(*history[name], strict=True) if history[name] else ((), ())
        ax.plot(steps, values, lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
