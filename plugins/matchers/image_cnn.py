"""Image encoders for the DAMSM matcher: a small CNN trained from scratch, or Inception-v3.

Both give region features from an intermediate grid and a global code from the deepest
layer, projected into the text space (§5.2).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from t2i_stages.plugin import ImageFeatures, require_asset
from t2i_stages.plugins.common.layers import DownBlock

from .params import SmallCnnParams
from .resize import resize_images


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)
    )


class SmallCnnImageEncoder(nn.Module):
    """image -> (regions (B, D, (s/8)^2) from the 1/8 grid, code (B, D) from the 1/16 grid)."""

    def __init__(self, params: SmallCnnParams, text_dim: int, align_corners: bool = False):
        super().__init__()
        self.align_corners = align_corners
        if params.image_size % 16:
            raise ValueError(
                f"small_cnn image_size must be a multiple of 16, got {params.image_size}"
            )
        self.image_size = params.image_size
        self.params = params
        w = params.width
        if params.arch == "pooled":
            self.stem = nn.Identity()
            self.to_regions = nn.Sequential(
                DownBlock(3, w), DownBlock(w, 2 * w), DownBlock(2 * w, 4 * w)
            )
            to_grid = DownBlock(4 * w, 8 * w)
        else:
            self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1), nn.LeakyReLU(0.2, True))
            self.to_regions = nn.Sequential(_down(w, w), _down(w, 2 * w), _down(2 * w, 4 * w))
            to_grid = _down(4 * w, 8 * w)
        if params.code_pool == "avgmax":
            self.to_global = nn.Sequential(to_grid, _AvgMax())
            code_in = 16 * w
        else:  # keeps the 4x4 layout (flattened, not averaged): captions name positions
            self.to_global = nn.Sequential(to_grid, nn.AdaptiveAvgPool2d(4), nn.Flatten())
            code_in = 8 * w * 16
        self.region_proj = nn.Conv2d(4 * w, text_dim, 1, bias=False)
        self.code_proj = nn.Linear(code_in, text_dim)

    def forward(self, images: torch.Tensor) -> ImageFeatures:
        x = self.to_regions(self.stem(resize_images(images, self.image_size, self.align_corners)))
        regions = self.region_proj(x if self.params.region_grad else x.detach()).flatten(2)
        code = self.code_proj(self.to_global(x))
        return ImageFeatures(regions, code)


class _AvgMax(nn.Module):
    """(B, C, h, w) -> (B, 2C): spatial mean and max side by side."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class InceptionImageEncoder(nn.Module):
    """Frozen Inception-v3: Mixed_6e (17x17) regions and Mixed_7c pooled code (§5.2).

    Images stay in [-1, 1] and are resized to 299 (as the references do). Only the two
    projections train (U(-0.1, 0.1) init). ``trunk="imagenet"`` reads torchvision's ImageNet
    weights from the local file ``weights``; ``trunk="checkpoint"`` builds the trunk as the
    references' CNN_ENCODER holds it (no ImageNet ``fc``) with torch's default init and reads
    no file: its tensors come with the matcher's (a released image_encoder, imported).
    """

    def __init__(
        self,
        text_dim: int,
        weights: str | None = None,
        align_corners: bool = False,
        trunk: Literal["imagenet", "checkpoint"] = "imagenet",
    ):
        super().__init__()
        import torchvision

        self.align_corners = align_corners
        net = torchvision.models.inception_v3(
            weights=None, aux_logits=False, init_weights=False, transform_input=False
        )
        if trunk == "imagenet":
            path = require_asset("inception_v3_imagenet", weights)
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
            net.load_state_dict(state, strict=True)
        else:
            net.fc = nn.Identity()  # never called: the code comes from code_proj
        net.eval().requires_grad_(False)
        self.backbone = net
        self.region_proj = nn.Conv2d(768, text_dim, 1, bias=False)
        self.code_proj = nn.Linear(2048, text_dim)
        nn.init.uniform_(self.region_proj.weight, -0.1, 0.1)
        nn.init.uniform_(self.code_proj.weight, -0.1, 0.1)

    def train(self, mode: bool = True) -> InceptionImageEncoder:
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm keeps its ImageNet statistics
        return self

    def forward(self, images: torch.Tensor) -> ImageFeatures:
        n = self.backbone
        x = resize_images(images, 299, self.align_corners)
        for name in (
            "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
            "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
            "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
        ):  # fmt: skip
            x = getattr(n, name)(x)
        regions = self.region_proj(x).flatten(2)  # (B, D, 289)
        for name in ("Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(n, name)(x)
        code = self.code_proj(x.mean(dim=(2, 3)))
        return ImageFeatures(regions, code)
