"""PNG encoding of the model's outputs: images, image grids and word-attention maps (PIL).

PNG is lossless and PIL's encoder is deterministic, so two equal arrays give equal bytes: the
server's "the same seed gives the same image" holds for the bytes a client receives.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from t2i_stages.export.runtime import to_pixels


def png_bytes(pixels: np.ndarray) -> bytes:
    """(H, W, 3) or (H, W) uint8 as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_pngs(images: np.ndarray) -> list[bytes]:
    """(B, 3, H, W) float images in [-1, 1] -> one PNG each (the runtime's uint8 rounding)."""
    return [png_bytes(p) for p in to_pixels(images)]


def grid_png(images: np.ndarray, ncol: int, pad: int = 2) -> bytes:
    """(B, 3, H, W) images in [-1, 1] as one PNG grid, ``ncol`` a row, white between."""
    pics = to_pixels(images)
    b, h, w, _ = pics.shape
    ncol = max(1, min(ncol, b))
    nrow = -(-b // ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(b):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = pics[i]
    return png_bytes(grid)


def attention_png(weights: np.ndarray) -> tuple[bytes, float]:
    """One word's (r, r) attention map as a grey PNG scaled by its maximum, and that maximum
    (pixel / 255 * max gives the weight back, to 8 bits), so faint maps stay visible."""
    a = np.nan_to_num(np.asarray(weights, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    a = np.clip(a, 0.0, None)
    top = float(a.max()) if a.size else 0.0
    scaled = a / top if top > 0 else a
    return png_bytes((scaled * 255.0 + 0.5).astype(np.uint8)), top
