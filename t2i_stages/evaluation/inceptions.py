"""The Inception networks of the papers' protocols, each from a local file (nothing downloads).

- ``FidInceptionExtractor``: pytorch-fid's FID Inception (the TF graph inception-2015-12-05
  ported to torch, pool3, 2048-d), built by clean-fid's copy of pytorch-fid's module
  (``cleanfid.inception_pytorch``) from ``pt_inception-2015-12-05-6726825d.pth``; input [0, 1]
  scaled to [-1, 1] (``2x - 1``), as pytorch-fid >= 0.1 does.
- ``ImageNetInceptionExtractor``: torchvision's ImageNet Inception-v3, pool3, as pytorch-fid at
  802da39 (2018) used it, which is what DM-GAN's and DF-GAN's ``eval/FID/inception.py`` are:
  bilinear (align_corners=True) to 299, then ``x * std/0.5 + (mean - 0.5)/0.5`` applied to
  [0, 1] input (torchvision's transform_input formula on un-normalised images: the network sees
  about [-0.19, 0.43], by channel, rather than [-1, 1]; kept, since the published numbers were
  made so).
- ``TFInceptionClassifier``: the TF graph's 1008-way softmax (without the output bias, as
  improved-gan's ``inception_score.py``) from clean-fid's TorchScript ``inception-2015-12-05.pt``.

Every extractor reads images in [0, 255] (uint8, or float when a protocol skips the uint8
round-trip) and says in ``input_range`` what its network is fed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..assets import require_asset
from ..errors import T2IError
from ..hashing import sha256_file
from .extractors import ImageExtractor, inception_file

PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _load_state(file: Path) -> dict[str, torch.Tensor]:
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise T2IError(f"{file}: not a state_dict (a {type(state).__name__})")
    return state


def load_fid_inception(path: str | Path | None = None) -> tuple[nn.Module, Path]:
    """pytorch-fid's FID Inception (pool3) from its local weights file, built by clean-fid's
    ``inception_pytorch.InceptionV3``; a missing file is a one-line MissingAssetError."""
    from unittest import mock

    from cleanfid import inception_pytorch

    file = require_asset("pytorch_fid_inception", path)
    state = _load_state(file)

    def local(url: str, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return state  # the library asks for its release URL: answer with the local file

    with (
        mock.patch.object(inception_pytorch, "load_state_dict_from_url", local),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # torchvision's note on the library's `pretrained=`
        try:
            net = inception_pytorch.InceptionV3(
                (3,), resize_input=False, normalize_input=True, use_fid_inception=True
            )
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise T2IError(f"{file}: not pytorch-fid's FID Inception weights ({first})") from None
    return net.eval().requires_grad_(False), file


class _FromFile:
    """An extractor whose weights are one local file (``self.path``): its SHA-256, computed
    once, goes into the protocol block."""

    path: Path
    _sha: str | None = None

    @property
    def weights_sha256(self) -> str:
        if self._sha is None:
            self._sha = sha256_file(self.path)
        return self._sha


class FidInceptionExtractor(_FromFile, ImageExtractor):
    """pytorch-fid's FID Inception: pool3 (2048-d) of [0, 1] images scaled to [-1, 1]."""

    name = "fid_inception"
    is_inception = True
    size = 299
    resize_method = "torch_bilinear"  # pytorch-fid: F.interpolate bilinear on float
    input_range = "[0, 1] scaled to [-1, 1] (2x - 1, pytorch-fid's normalize_input)"

    def __init__(
        self,
        device: torch.device | str = "cpu",
        path: str | Path | None = None,
        resize: str | None = None,
    ):
        super().__init__(device, resize)
        self.model, self.path = load_fid_inception(path)
        self.model = self.model.to(self.device)

    def model_fn(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x / 255.0)[0].reshape(len(x), -1)

    def describe(self, native: int) -> dict[str, Any]:
        return super().describe(native) | {
            "network": f"pytorch-fid FID Inception ({PYTORCH_FID_FILE}), pool3",
            "input_range": self.input_range,
        }


def load_imagenet_inception(
    path: str | Path | None = None, device: torch.device | str = "cpu"
) -> tuple[nn.Module, Path]:
    """torchvision's ImageNet Inception-v3 (``inception_v3_google-0cc3c7bd.pth``) from a local
    file, with its 1000-way head and transform_input off; MissingAssetError when absent."""
    from torchvision.models import inception_v3

    file = require_asset("inception_v3_imagenet", path)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    try:
        net.load_state_dict(_load_state(file))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise T2IError(f"{file}: not torchvision's Inception-v3 weights ({first})") from None
    return net.to(device).eval().requires_grad_(False), file


def reference_normalise(x: torch.Tensor) -> torch.Tensor:
    """DM-GAN / DF-GAN ``eval/FID/inception.py:127-131`` (pytorch-fid 802da39) on [0, 1] input:
    channel c becomes ``x * std_c/0.5 + (mean_c - 0.5)/0.5``."""
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


class ImageNetInceptionExtractor(_FromFile, ImageExtractor):
    """torchvision's ImageNet Inception-v3 pool3 as the DM-GAN / DF-GAN FID code feeds it."""

    name = "imagenet_inception"
    is_inception = True
    size = 299
    resize_method = "pil_bilinear"  # DM-GAN eval/FID/fid_score.py:220-223
    input_range = (
        "[0, 1] then x * std/0.5 + (mean - 0.5)/0.5 per channel (ImageNet mean/std; "
        "pytorch-fid 802da39, DM-GAN/DF-GAN eval/FID/inception.py:127-131): about [-0.19, 0.43]"
    )

    def __init__(
        self,
        device: torch.device | str = "cpu",
        path: str | Path | None = None,
        resize: str | None = None,
    ):
        super().__init__(device, resize)
        net, self.path = load_imagenet_inception(path, self.device)
        net.fc = nn.Identity()  # pool3 (after avgpool and the eval-mode dropout): 2048-d
        self.net = net

    def model_fn(self, x: torch.Tensor) -> torch.Tensor:
        x = x / 255.0
        if tuple(x.shape[-2:]) != (299, 299):  # inception.py:124-125 (identity at 299)
            x = nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=True)
        return self.net(reference_normalise(x))

    def describe(self, native: int) -> dict[str, Any]:
        return super().describe(native) | {
            "network": "torchvision ImageNet Inception-v3 (inception_v3_google-0cc3c7bd.pth), "
            "pool3, as pytorch-fid 802da39",
            "input_range": self.input_range,
        }


class TFInceptionClassifier:
    """p(y|x) over the TF graph's 1008 classes, from clean-fid's TorchScript Inception, without
    the output layer's bias (improved-gan's ``inception_score.py``; StyleGAN2-ADA's IS calls
    the same file with ``no_output_bias=True``). Reads (B, 3, 299, 299) float in [0, 255]."""

    name = "tf_inception"
    input_range = "[0, 255] float; the TorchScript graph scales to [-1, 1] ((x - 128) / 128)"
    scale = "[0, 255]"

    def __init__(self, path: str | Path | None = None, device: torch.device | str = "cpu"):
        self.path = inception_file(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's note on TorchScript
            self.model = torch.jit.load(str(self.path), map_location="cpu").eval()
        self.model = self.model.to(torch.device(device))
        self.sha256 = sha256_file(self.path)

    def to(self, device: torch.device | str) -> TFInceptionClassifier:
        self.model = self.model.to(torch.device(device))
        return self

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> np.ndarray:
        out = self.model(x, return_features=False, no_output_bias=True)
        return out.double().cpu().numpy()
