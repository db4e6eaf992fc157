"""The resizes the metrics apply before their networks: clean-fid's (the default) and the
papers' own (``RESIZES``, chosen by a metric's ``resize`` param or a protocol preset)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import T2IError


def clean_resizer(size: int, filter: str = "bicubic") -> Callable[[np.ndarray], np.ndarray]:
    """clean-fid's PIL resizer (float, no quantisation) to size x size; HWC uint8 -> HWC float."""
    from cleanfid.resize import make_resizer

    return make_resizer("PIL", False, filter, (size, size))


def resize_uint8(images: torch.Tensor, size: int | None, filter: str = "bicubic") -> torch.Tensor:
    """uint8 (or float) (N, 3, H, W) in [0, 255] -> float (N, 3, size, size) in [0, 255] through
    clean-fid's resizer (PIL on float, no quantisation)."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images.float()
    fn = clean_resizer(size, filter)
    arr = images.permute(0, 2, 3, 1).float().numpy()
    out = np.stack([fn(a) for a in arr])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float()


# How images reach a network's input size, as the papers' evaluation code resized them.
RESIZES: dict[str, str] = {
    "clean_bicubic": "clean-fid PIL bicubic on float (no quantisation)",
    "clean_bilinear": "clean-fid PIL bilinear on float (no quantisation)",
    "pil_bilinear": "PIL bilinear on the uint8 image, back to uint8 (torchvision Resize on a "
    "PIL image, scipy.misc.imresize)",
    "torch_bilinear": "torch bilinear interpolation on float, align_corners=False, no antialias "
    "(pytorch-fid; torchvision Resize on a tensor)",
}


def _pil_bilinear_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    from PIL import Image

    arr = images.float().round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = [np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in arr]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()


def resize_images(images: torch.Tensor, size: int | None, method: str) -> torch.Tensor:
    """(N, 3, H, W) in [0, 255] (uint8 or float) -> float (N, 3, size, size) in [0, 255] by one
    of ``RESIZES``; the same size (or ``size`` None) is returned unchanged (as float).

    ``pil_bilinear`` works on uint8 as PIL does: a float input is rounded to uint8 first.
    """
    if method not in RESIZES:
        raise T2IError(f"unknown resize '{method}'; known: {', '.join(RESIZES)}")
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images.float()
    if method.startswith("clean_"):
        return resize_uint8(images, size, method.removeprefix("clean_"))
    if method == "pil_bilinear":
        return _pil_bilinear_uint8(images, size)
    return torch.nn.functional.interpolate(
        images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=False
    )


def describe_resize(method: str, native: int, size: int | None) -> str:
    """The resizer line of a metric's protocol."""
    if size is None or size == native:
        return f"none (native {native} px)"
    if method.startswith("clean_"):
        name = method.removeprefix("clean_")
        return f"clean-fid PIL {name} {native} -> {size} px (float, no quantisation)"
    return f"{RESIZES[method]}: {native} -> {size} px"
