"""Image feature extractors for Fréchet / kernel distances, and image-text encoders for CMD.

Every extractor reads images (N, 3, H, W) in [0, 255] (uint8, or float for a protocol that
scores the generator's output without the uint8 round-trip), resizes them when its network wants
another size (clean-fid's resizers by default; ``RESIZES`` names the papers' others), and returns
numpy features (N, D). It records what a reader of ``metrics.json`` needs to reproduce the
number: its name, the resizer, and a SHA-256 of its weights. Only clean-fid's Inception gives a number called FID; every other extractor gives a
Fréchet distance *in its own feature space*, labelled ``FD[<name>]``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..assets import MissingAssetError, assets_home, missing_message, require_hf_folder
from ..errors import T2IError
from ..hashing import sha256_file as file_sha256
from .resizing import (  # noqa: F401 - re-exported: the extractors' resizes
    RESIZES,
    clean_resizer,
    describe_resize,
    resize_images,
    resize_uint8,
)

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_HOW = (
    "clean-fid's Inception (https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
    f"metrics/{INCEPTION_FILE}, downloaded on a machine with internet)"
)


def state_sha256(module: nn.Module | dict[str, torch.Tensor]) -> str:
    """SHA-256 of a module's state (sorted names, dtypes, shapes and bytes)."""
    state = module.state_dict() if isinstance(module, nn.Module) else module
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class ImageExtractor:
    """Base class: ``features(uint8 images) -> (N, D)``; subclasses set ``model_fn``."""

    name = "extractor"
    is_inception = False
    size: int | None = None  # input side the network wants (None = the images' own)
    resize_method = "clean_bicubic"  # one of RESIZES

    def __init__(self, device: torch.device | str = "cpu", resize: str | None = None):
        self.device = torch.device(device)
        if resize is not None:
            if resize not in RESIZES:
                raise T2IError(f"unknown resize '{resize}'; known: {', '.join(RESIZES)}")
            self.resize_method = resize

    def model_fn(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, s, s) float in [0, 255] on ``device`` -> (B, D)."""
        raise NotImplementedError

    @property
    def weights_sha256(self) -> str:
        raise NotImplementedError

    def resizer(self, native: int) -> str:
        return describe_resize(self.resize_method, native, self.size)

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        """Features of (N, 3, H, W) images in [0, 255] (uint8, or float: not quantised)."""
        outs = []
        for s in range(0, len(images), batch_size):
            x = resize_images(images[s : s + batch_size], self.size, self.resize_method)
            outs.append(self.model_fn(x.to(self.device)).float().cpu().numpy())
        return np.concatenate(outs).astype(np.float64)

    def describe(self, native: int) -> dict[str, Any]:
        return {
            "extractor": self.name,
            "weights_sha256": self.weights_sha256,
            "resizer": self.resizer(native),
        }


def inception_file(path: str | os.PathLike[str] | None = None) -> Path:
    """Where clean-fid's Inception file is; MissingAssetError naming the place otherwise.

    Looked for at ``path`` (a file or a folder holding it), else under
    ``$T2I_STAGES_HOME/cleanfid/`` and in the temp folder clean-fid itself uses.
    """
    if path is not None:
        p = Path(path).expanduser()
        p = p / INCEPTION_FILE if p.is_dir() else p
        if not p.is_file():
            raise MissingAssetError(missing_message(p, INCEPTION_HOW, "clean-fid Inception"))
        return p
    candidates = [
        assets_home() / "cleanfid" / INCEPTION_FILE,
        Path(tempfile.gettempdir()) / INCEPTION_FILE,
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise MissingAssetError(
        missing_message(candidates[0], INCEPTION_HOW, "clean-fid Inception")
        + f" (also looked in {candidates[1].parent})"
    )


class InceptionExtractor(ImageExtractor):
    """clean-fid's Inception (pool3, 2048-d) in its ``clean`` mode: PIL bicubic to 299 px."""

    name = "inception"
    is_inception = True
    size = 299

    def __init__(
        self, device: torch.device | str = "cpu", path: str | None = None, resize: str | None = None
    ):
        super().__init__(device, resize)
        from cleanfid.inception_torchscript import InceptionV3W

        self.path = inception_file(path)
        if self.path.name != INCEPTION_FILE:
            raise T2IError(f"{self.path}: clean-fid needs the file to be named {INCEPTION_FILE}")
        # download=False: the file is read from the folder we found, never fetched
        self.model = InceptionV3W(str(self.path.parent), download=False).to(self.device).eval()
        self._sha: str | None = None

    def model_fn(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @property
    def weights_sha256(self) -> str:
        if self._sha is None:
            self._sha = file_sha256(self.path)
        return self._sha

    def resizer(self, native: int) -> str:
        if self.resize_method != "clean_bicubic":
            return super().resizer(native)
        return f"clean-fid 'clean' mode: PIL bicubic {native} -> 299 px (float, no quantisation)"


class ModuleExtractor(ImageExtractor):
    """Features from a torch callable of images in [-1, 1] (a matcher, the oracle, a random CNN)."""

    def __init__(
        self,
        name: str,
        fn: Callable[[torch.Tensor], torch.Tensor],
        weights: nn.Module | dict[str, torch.Tensor],
        device: torch.device | str = "cpu",
        size: int | None = None,
    ):
        super().__init__(device)
        self.name, self.fn, self.size = name, fn, size
        self._sha = state_sha256(weights)

    def model_fn(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x / 127.5 - 1.0)

    @property
    def weights_sha256(self) -> str:
        return self._sha


class RandomCNN(nn.Module):
    """A fixed, seeded random CNN: a cheap feature space for tests (not a quality measure)."""

    def __init__(self, dim: int = 64, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(512, dim),
        )  # fmt: skip
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / max(p[0].numel(), 1)) ** 0.5)
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def random_extractor(
    dim: int = 64, seed: int = 0, device: str | torch.device = "cpu"
) -> ImageExtractor:
    net = RandomCNN(dim, seed).to(device)
    return ModuleExtractor(f"random(seed={seed},dim={dim})", net, net, device)


def matcher_extractor(
    matcher: Any, name: str = "matcher", device: str | torch.device = "cpu"
) -> ImageExtractor:
    """The global image code of a matcher's image encoder (DAMSM / ITM)."""
    if matcher is None:
        raise T2IError("the 'matcher' extractor needs a run with a matcher (recipe.matcher)")

    def fn(x: torch.Tensor) -> torch.Tensor:
        return matcher.encode_image(x).code

    return ModuleExtractor(name, fn, matcher, device)


def oracle_extractor(oracle: Any, device: str | torch.device = "cpu") -> ImageExtractor:
    """The shapes oracle's penultimate layer, every cell's features side by side."""
    net = oracle.net
    captured: list[torch.Tensor] = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        crops = oracle.crops(x)
        b, n = crops.shape[:2]
        handle = net.head.register_forward_hook(lambda m, inp, out: captured.append(inp[0]))
        try:
            captured.clear()
            net(crops.reshape(b * n, *crops.shape[2:]).to(oracle.device))
        finally:
            handle.remove()
        return captured[0].reshape(b, -1)

    return ModuleExtractor(f"shapes-oracle(r{oracle.resolution})", fn, net, device)


# ------------------------------------------------------------------ image-text encoders


class JointEncoder:
    """Images and captions in one space (CLIP from a local folder, or a run's matcher)."""

    name = "joint"
    weights_sha256 = ""
    resizer = ""

    def image_features(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        raise NotImplementedError

    def text_features(
        self, captions: list[str], tokens: torch.Tensor, mask: torch.Tensor
    ) -> np.ndarray:
        raise NotImplementedError


_CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
_CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def _pooled(out: Any) -> torch.Tensor:
    if torch.is_tensor(out):
        return out
    return out.pooler_output if getattr(out, "pooler_output", None) is not None else out[0]


class ClipEncoder(JointEncoder):
    """A Hugging Face CLIP read from a local folder (never downloaded)."""

    def __init__(
        self,
        folder: str,
        device: str | torch.device = "cpu",
        normalize: bool = True,
        resize: str = "clean_bilinear",
    ):
        from transformers import AutoTokenizer, CLIPModel

        self.folder = require_hf_folder(folder, what="CLIP model folder")
        self.device = torch.device(device)
        self.model = CLIPModel.from_pretrained(str(self.folder), local_files_only=True)
        self.model = self.model.to(self.device).eval().requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        self.size = int(self.model.config.vision_config.image_size)
        self.normalize = normalize
        if resize not in RESIZES:
            raise T2IError(f"unknown resize '{resize}'; known: {', '.join(RESIZES)}")
        self.resize_method = resize
        self.name = f"clip({self.folder.name})"
        self.weights_sha256 = state_sha256(self.model)
        norm = "CLIP mean/std normalisation" if normalize else "no CLIP normalisation ([0,1])"
        how = (
            f"clean-fid PIL {resize.removeprefix('clean_')}"
            if resize.startswith("clean_")
            else RESIZES[resize]
        )
        self.resizer = f"{how} -> {self.size} px, {norm}"

    @torch.no_grad()
    def image_features(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        """Features of (N, 3, H, W) images in [0, 255] (uint8, or float: not quantised)."""
        outs = []
        for s in range(0, len(images), batch_size):
            x = resize_images(images[s : s + batch_size], self.size, self.resize_method) / 255.0
            if self.normalize:
                x = (x - _CLIP_MEAN) / _CLIP_STD
            outs.append(_pooled(self.model.get_image_features(pixel_values=x.to(self.device))))
        return torch.cat(outs).float().cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def text_features(
        self, captions: list[str], tokens: torch.Tensor, mask: torch.Tensor
    ) -> np.ndarray:
        limit = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        outs = []
        for s in range(0, len(captions), 256):
            enc = self.tokenizer(
                captions[s : s + 256], padding=True, truncation=True, max_length=limit,
                return_tensors="pt",
            )  # fmt: skip
            enc = {
                k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
            }
            outs.append(_pooled(self.model.get_text_features(**enc)))
        return torch.cat(outs).float().cpu().numpy().astype(np.float64)


class MatcherEncoder(JointEncoder):
    """A matcher's global image code and sentence vector (the in-domain joint space)."""

    def __init__(self, matcher: Any, name: str = "matcher", device: str | torch.device = "cpu"):
        if matcher is None:
            raise T2IError(
                "the 'matcher' feature space needs a run with a matcher (recipe.matcher)"
            )
        self.matcher, self.name = matcher, name
        self.device = torch.device(device)
        self.weights_sha256 = state_sha256(matcher)
        self.resizer = "the matcher's own (bilinear to its input size)"

    @torch.no_grad()
    def image_features(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        outs = [
            self.matcher.encode_image(
                (images[s : s + batch_size].float() / 127.5 - 1).to(self.device)
            ).code
            for s in range(0, len(images), batch_size)
        ]
        return torch.cat(outs).float().cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def text_features(
        self, captions: list[str], tokens: torch.Tensor, mask: torch.Tensor
    ) -> np.ndarray:
        outs = []
        for s in range(0, len(tokens), 256):
            t, m = tokens[s : s + 256], mask[s : s + 256]
            longest = max(int(m.sum(1).max()), 1)
            feats = self.matcher.encode_text(
                t[:, :longest].to(self.device), m[:, :longest].to(self.device)
            )
            outs.append(feats.sentence)
        return torch.cat(outs).float().cpu().numpy().astype(np.float64)


def l2_normalise(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    return scale * x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
