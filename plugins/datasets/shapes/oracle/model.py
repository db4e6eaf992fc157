"""The oracle's network and its reading of images.

Each image is resized so that a grid cell is ``cell_px`` pixels, and every cell (plus a small
margin) is classified by one small CNN (``CellNet``): is there an object, and its shape, colour,
size and fine detail. The position is the cell. ``ShapesOracle`` wraps a trained net with the
params it was trained for and turns its outputs into attribute rows like the dataset's.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from t2i_stages.plugin import T2IError

from ..params import FINES, SHAPES, SIZES, ShapesParams
from ..scene import COLOR_NAMES, F_PRESENT
from .score import ATTRS, score_predictions


def _block(cin: int, cout: int, stride: int, kernel: int = 3) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, kernel, stride, 1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CellNet(nn.Module):
    """Classifies one cell crop: presence logit and attribute logits."""

    def __init__(self, sizes: dict[str, int], width: int = 16):
        super().__init__()
        w = width
        self.sizes = dict(sizes)
        self.body = nn.Sequential(
            _block(6, w, 2, kernel=4),
            _block(w, 2 * w, 1),
            _block(2 * w, 2 * w, 2),
            _block(2 * w, 4 * w, 1),
            _block(4 * w, 4 * w, 2),
        )
        self.head = nn.Linear(8 * w, 1 + sum(self.sizes.values()))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # The crop and the crop minus its border's median colour (the local background), so
        # that varied backgrounds need not be learned away.
        border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)
        bg = border.median(dim=2).values[:, :, None, None]
        h = self.body(torch.cat([x, x - bg], dim=1))
        h = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        out = self.head(h)
        logits = {"present": out[:, 0]}
        i = 1
        for name, n in self.sizes.items():
            logits[name] = out[:, i : i + n]
            i += n
        return logits


def head_sizes(p: ShapesParams) -> dict[str, int]:
    """Classes per attribute head of the net for these params (the order is the head layout)."""
    return {
        "shape": len(p.shapes),
        "color": len(p.colors),
        "size": len(p.sizes),
        "fine": len(p.fine_attributes),
    }


def default_cell_px(resolution: int, grid: int) -> int:
    return int(max(16, min(24, round(resolution / grid))))


class ShapesOracle:
    """A trained cell classifier for one shapes configuration at one image resolution."""

    def __init__(
        self,
        params: ShapesParams,
        resolution: int,
        cell_px: int,
        net: CellNet,
        info: dict | None = None,
    ):
        self.params = params
        self.resolution = int(resolution)
        self.grid = params.grid
        self.cell_px = int(cell_px)
        self.margin = max(2, self.cell_px // 6)
        self.net = net.eval()
        self.info = dict(info or {})
        # head class index -> global attribute id
        self._ids = {
            "shape": torch.tensor([SHAPES.index(s) for s in params.shapes]),
            "color": torch.tensor([COLOR_NAMES.index(c) for c in params.colors]),
            "size": torch.tensor([SIZES.index(s) for s in params.sizes]),
            "fine": torch.tensor([FINES.index(f) for f in params.fine_attributes]),
        }

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: Any) -> ShapesOracle:
        self.net.to(device)
        return self

    # ---- crops -------------------------------------------------------------------------
    def crops(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, grid*grid, 3, c, c) cell crops with margins."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise T2IError(f"oracle expects images (B, 3, H, W), got {tuple(images.shape)}")
        g, cp, m = self.grid, self.cell_px, self.margin
        x = images.float()
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(
                x,
                size=(self.resolution, self.resolution),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        x = F.interpolate(
            x, size=(g * cp, g * cp), mode="bilinear", antialias=True, align_corners=False
        )
        x = F.pad(x, (m, m, m, m), mode="replicate")
        size = cp + 2 * m
        cells = [
            x[:, :, r * cp : r * cp + size, c * cp : c * cp + size]
            for r in range(g)
            for c in range(g)
        ]
        return torch.stack(cells, dim=1)

    @torch.no_grad()
    def predict_cells(self, images: torch.Tensor, batch: int = 512) -> dict[str, torch.Tensor]:
        """Per cell: ``present`` probability (B, g*g) and attribute ids (B, g*g) (global ids)."""
        crops = self.crops(images.to(self.device))
        b, n = crops.shape[:2]
        flat = crops.reshape(b * n, *crops.shape[2:])
        outs: dict[str, list[torch.Tensor]] = {}
        self.net.eval()
        for s in range(0, len(flat), batch):
            logits = self.net(flat[s : s + batch])
            outs.setdefault("present", []).append(torch.sigmoid(logits["present"]))
            for name in ATTRS:
                outs.setdefault(name, []).append(
                    self._ids[name].to(flat.device)[logits[name].argmax(1)]
                )
        return {k: torch.cat(v).reshape(b, n).cpu() for k, v in outs.items()}

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Attribute rows (B, max_objects, 7) in canonical (cell) order, like the dataset's."""
        cells = self.predict_cells(images)
        b = cells["present"].shape[0]
        out = torch.full((b, self.params.max_objects, 7), -1, dtype=torch.int64)
        out[:, :, F_PRESENT] = 0
        for i in range(b):
            p = cells["present"][i]
            found = [int(c) for c in torch.nonzero(p > 0.5).flatten()]
            if len(found) > self.params.max_objects:
                found = sorted(sorted(found, key=lambda c: -float(p[c]))[: self.params.max_objects])
            for k, c in enumerate(found):
                out[i, k] = torch.tensor(
                    [
                        1,
                        cells["shape"][i, c],
                        cells["color"][i, c],
                        cells["size"][i, c],
                        c // self.grid,
                        c % self.grid,
                        cells["fine"][i, c],
                    ]
                )
        return out

    # ---- scoring -----------------------------------------------------------------------
    def score(
        self, images: torch.Tensor, attributes: torch.Tensor, mentioned_only: bool = True
    ) -> dict[str, float]:
        """Accuracy of the images against ground-truth attributes (rules: ``oracle.score``)."""
        pred = self.predict(images)
        return score_predictions(pred, attributes, self.grid, mentioned_only)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
