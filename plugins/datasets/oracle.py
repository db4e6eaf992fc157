"""The shapes oracle: reads the attributes of objects in (real or generated) shapes images.

It is the judge of whether a generator follows its captions. Each image is resized so that a
grid cell is ``cell_px`` pixels, and every cell (plus a small margin) is classified by one small
CNN: is there an object, and its shape, colour, size and fine detail. The position is the cell.
It is trained on renders of the dataset's own params at the resolution it will judge, with
noise, colour and shift augmentation so that imperfect generated images are still read, and it
is cached as safetensors (with its held-out accuracy in the metadata), so it trains once::

    oracle = load_oracle(dataset)          # or ShapesParams; trains on first use (~1 min CPU)
    attrs = oracle.predict(images)         # int64 (B, max_objects, 7), columns 0-6 of the layout
    oracle.score(images, batch["attributes"])
    # {"shape": acc, "color": acc, "size": acc, "fine": acc, "position": acc,
    #  "count": acc, "all_mentioned": acc, "n_images": B, "n_objects": n}

``score`` counts an attribute only where the caption mentions it (when the attribute tensor
carries the mention columns); a relation mention is right when the relation holds between the
predicted cells. ``all_mentioned`` is the share of images with every mentioned attribute of every
object right. An attribute no caption in the batch mentions scores ``nan``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2i_stages.errors import T2IError

from .base import cache_root
from .shapes_params import COLORS, FINES, SHAPES, SIZES, ShapesParams
from .shapes_render import render_scene
from .shapes_scene import (
    COLOR_NAMES,
    F_COL,
    F_COLOR,
    F_FINE,
    F_PRESENT,
    F_ROW,
    F_SHAPE,
    F_SIZE,
    M_COLOR,
    M_FINE,
    M_POS,
    M_REL,
    M_REL_TARGET,
    M_SIZE,
    REL_ABOVE,
    REL_BELOW,
    REL_LEFT,
    sample_scene,
)

ORACLE_VERSION = 1
ORACLE_TRAIN_SPLIT = 2  # scene streams distinct from train (0) and test (1)
ORACLE_HOLDOUT_SPLIT = 3
ATTRS = ("shape", "color", "size", "fine")
_COL = {"shape": F_SHAPE, "color": F_COLOR, "size": F_SIZE, "fine": F_FINE}
_MCOL = {"color": M_COLOR, "size": M_SIZE, "fine": M_FINE}


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


def _params_of(source: Any) -> ShapesParams:
    if isinstance(source, ShapesParams):
        return source
    if hasattr(source, "params") and isinstance(source.params, ShapesParams):
        return source.params
    if isinstance(source, dict):
        return ShapesParams.model_validate(source)
    raise T2IError(f"load_oracle needs a shapes dataset or its params, got {type(source).__name__}")


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
        """Accuracy of the images against ground-truth attributes (see the module docstring)."""
        pred = self.predict(images)
        return score_predictions(pred, attributes, self.grid, mentioned_only)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}


def _match(gt: np.ndarray, pred: np.ndarray, grid: int) -> dict[int, int]:
    """Ground-truth row -> predicted row: same cell first, then best attribute agreement."""
    gt_rows = [j for j in range(len(gt)) if gt[j, F_PRESENT] == 1]
    pr_rows = [k for k in range(len(pred)) if pred[k, F_PRESENT] == 1]
    cell_of = {k: (int(pred[k, F_ROW]), int(pred[k, F_COL])) for k in pr_rows}
    match: dict[int, int] = {}
    used: set[int] = set()
    for j in gt_rows:
        for k in pr_rows:
            if k not in used and cell_of[k] == (int(gt[j, F_ROW]), int(gt[j, F_COL])):
                match[j] = k
                used.add(k)
                break
    for j in gt_rows:
        if j in match:
            continue
        best = None
        for k in pr_rows:
            if k in used:
                continue
            agree = sum(int(gt[j, _COL[a]] == pred[k, _COL[a]]) for a in ATTRS)
            dist = abs(cell_of[k][0] - gt[j, F_ROW]) + abs(cell_of[k][1] - gt[j, F_COL])
            key = (-agree, dist)
            if best is None or key < best[0]:
                best = (key, k)
        if best is not None:
            match[j] = best[1]
            used.add(best[1])
    return match


def _relation_holds(rel: int, a: np.ndarray, b: np.ndarray) -> bool:
    if rel == REL_ABOVE:
        return a[F_ROW] < b[F_ROW]
    if rel == REL_BELOW:
        return a[F_ROW] > b[F_ROW]
    if rel == REL_LEFT:
        return a[F_COL] < b[F_COL]
    return a[F_COL] > b[F_COL]


def score_predictions(
    pred: torch.Tensor, attributes: torch.Tensor, grid: int, mentioned_only: bool = True
) -> dict[str, float]:
    """Score predicted attribute rows against ground truth (see ``ShapesOracle.score``)."""
    pred_np = np.asarray(pred.cpu() if hasattr(pred, "cpu") else pred)
    gt_np = np.asarray(attributes.cpu() if hasattr(attributes, "cpu") else attributes)
    if gt_np.ndim != 3 or gt_np.shape[0] != pred_np.shape[0]:
        raise T2IError(
            f"attributes must be (B, max_objects, 7 or 14) matching the images, got {gt_np.shape}"
        )
    has_mentions = gt_np.shape[2] >= 14 and mentioned_only
    right = {a: 0 for a in (*ATTRS, "position")}
    total = {a: 0 for a in (*ATTRS, "position")}
    all_ok = 0
    count_ok = 0
    n_objects = 0
    for b in range(len(gt_np)):
        gt, pr = gt_np[b], pred_np[b]
        match = _match(gt, pr, grid)
        image_ok = True
        gt_rows = [j for j in range(len(gt)) if gt[j, F_PRESENT] == 1]
        n_objects += len(gt_rows)
        count_ok += int(len(gt_rows) == int((pr[:, F_PRESENT] == 1).sum()))
        for j in gt_rows:
            k = match.get(j)
            for a in ATTRS:
                if has_mentions and a != "shape" and gt[j, _MCOL[a]] != 1:
                    continue
                ok = k is not None and pr[k, _COL[a]] == gt[j, _COL[a]]
                right[a] += int(ok)
                total[a] += 1
                image_ok &= bool(ok)
            mpos = int(gt[j, M_POS]) if has_mentions else 1
            if mpos == 0:
                continue
            if mpos == 2:
                t = int(gt[j, M_REL_TARGET])
                kt = match.get(t)
                ok = (
                    k is not None
                    and kt is not None
                    and _relation_holds(int(gt[j, M_REL]), pr[k], pr[kt])
                )
            else:
                ok = k is not None and pr[k, F_ROW] == gt[j, F_ROW] and pr[k, F_COL] == gt[j, F_COL]
            right["position"] += int(ok)
            total["position"] += 1
            image_ok &= bool(ok)
        all_ok += int(image_ok)
    n = len(gt_np)
    out: dict[str, float] = {a: (right[a] / total[a] if total[a] else math.nan) for a in right}
    out["count"] = count_ok / n if n else math.nan
    out["all_mentioned"] = all_ok / n if n else math.nan
    out["n_images"] = float(n)
    out["n_objects"] = float(n_objects)
    return out


def objects_right(
    pred: torch.Tensor | np.ndarray,
    attributes: torch.Tensor | np.ndarray,
    grid: int,
    attrs: tuple[str, ...] = ("shape", "color"),
    position: bool = True,
) -> np.ndarray:
    """Per image: is every ground-truth object read with all of ``attrs`` right (and, with
    ``position``, in its own grid cell), whatever the caption mentions.

    Objects are paired as in ``score_predictions``; an extra predicted object is not counted
    against the image (``count`` measures that). On a one-cell grid every object is in cell
    (0, 0), so the position is always right once the object is found.
    """
    pred_np = np.asarray(pred.cpu() if hasattr(pred, "cpu") else pred)
    gt_np = np.asarray(attributes.cpu() if hasattr(attributes, "cpu") else attributes)
    if gt_np.ndim != 3 or pred_np.ndim != 3 or gt_np.shape[0] != pred_np.shape[0]:
        raise T2IError(
            f"attributes must be (B, max_objects, 7 or 14) matching the images, got {gt_np.shape}"
        )
    unknown = [a for a in attrs if a not in _COL]
    if unknown:
        raise T2IError(f"unknown attribute(s) {unknown}; use {', '.join(ATTRS)}")
    out = np.ones(len(gt_np), dtype=bool)
    for b in range(len(gt_np)):
        gt, pr = gt_np[b], pred_np[b]
        match = _match(gt, pr, grid)
        for j in (j for j in range(len(gt)) if gt[j, F_PRESENT] == 1):
            k = match.get(j)
            ok = k is not None and all(pr[k, _COL[a]] == gt[j, _COL[a]] for a in attrs)
            if ok and position:
                ok = pr[k, F_ROW] == gt[j, F_ROW] and pr[k, F_COL] == gt[j, F_COL]
            if not ok:
                out[b] = False
                break
    return out


# ---- training ----------------------------------------------------------------------------
def _render_chunk(
    params_json: str, split_id: int, start: int, n: int, resolution: int, empty: bool
):
    p = ShapesParams.model_validate_json(params_json)
    imgs = np.zeros((n, resolution, resolution, 3), np.uint8)
    objs = np.zeros((n, p.max_objects, 7), np.int64)
    for i in range(n):
        scene = sample_scene(p, split_id, start + i)
        if empty:
            scene.objects[:] = -1
            scene.objects[:, F_PRESENT] = 0
        imgs[i] = render_scene(scene, resolution, p.grid, p.object_scale, p.supersample)
        objs[i] = scene.objects
    return imgs, objs


def render_set(
    p: ShapesParams, split_id: int, n: int, resolution: int, start: int = 0, empty: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``n`` scenes of a scene stream in memory: uint8 (n, 3, r, r) and objects (n, max_objects, 7).

    ``empty`` renders the scenes' backgrounds only (no objects). Large sets use worker processes
    (the result does not depend on how many).
    """
    params_json = p.model_dump_json()
    workers = min(os.cpu_count() or 1, 8)
    if workers > 1 and n * resolution * resolution >= 500 * 128 * 128:
        chunk = math.ceil(n / (4 * workers))
        starts = list(range(0, n, chunk))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(
                pool.map(
                    _render_chunk,
                    [params_json] * len(starts),
                    [split_id] * len(starts),
                    [start + s for s in starts],
                    [min(chunk, n - s) for s in starts],
                    [resolution] * len(starts),
                    [empty] * len(starts),
                )
            )
        imgs = np.concatenate([a for a, _ in parts])
        objs = np.concatenate([b for _, b in parts])
    else:
        imgs, objs = _render_chunk(params_json, split_id, start, n, resolution, empty)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(objs)


def _cell_targets(objs: torch.Tensor, p: ShapesParams) -> dict[str, torch.Tensor]:
    """Per cell of every image: present (0/1) and head-class targets (-100 where absent)."""
    b, g = objs.shape[0], p.grid
    lookup = {
        "shape": {SHAPES.index(s): i for i, s in enumerate(p.shapes)},
        "color": {COLOR_NAMES.index(c): i for i, c in enumerate(p.colors)},
        "size": {SIZES.index(s): i for i, s in enumerate(p.sizes)},
        "fine": {FINES.index(f): i for i, f in enumerate(p.fine_attributes)},
    }
    t = {k: torch.full((b, g * g), -100, dtype=torch.int64) for k in ATTRS}
    t["present"] = torch.zeros((b, g * g))
    for i in range(b):
        for o in objs[i]:
            if o[F_PRESENT] != 1:
                continue
            c = int(o[F_ROW]) * g + int(o[F_COL])
            t["present"][i, c] = 1.0
            for a in ATTRS:
                t[a][i, c] = lookup[a][int(o[_COL[a]])]
    return t


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Noise, contrast/brightness and blur, mild enough to keep every colour class apart."""
    b = x.shape[0]
    scale = 1 + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.16
    shift = (torch.rand(b, 3, 1, 1, generator=gen) - 0.5) * 0.12
    x = x * scale + shift
    blur = torch.rand(b, generator=gen) < 0.3
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
        x[blur] = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), k, groups=3)
    sigma = torch.rand(b, 1, 1, 1, generator=gen) * 0.12
    return (x + torch.randn(x.shape, generator=gen) * sigma).clamp(-1.2, 1.2)


def train_oracle(
    p: ShapesParams,
    resolution: int,
    *,
    cell_px: int | None = None,
    train_images: int = 2500,
    epochs: int = 6,
    holdout_images: int = 400,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    precision: str = "fp32",
) -> ShapesOracle:
    """Train an oracle on fresh renders and measure it on held-out renders (both real data).

    ``precision``: the resolved autocast of the training forward passes (fp32 or bf16)."""
    from t2i_stages.hardware import autocast

    t0 = time.perf_counter()
    cell_px = cell_px or default_cell_px(resolution, p.grid)
    sizes = {
        "shape": len(p.shapes),
        "color": len(p.colors),
        "size": len(p.sizes),
        "fine": len(p.fine_attributes),
    }
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = CellNet(sizes)
    oracle = ShapesOracle(p, resolution, cell_px, net)
    if train_images is None:  # about 5000 objects, whatever the objects per image
        train_images = math.ceil(5000 / ((p.min_objects + p.max_objects) / 2))
    imgs, objs = render_set(p, ORACLE_TRAIN_SPLIT, train_images, resolution)
    if p.grid == 1:  # one cell per image: add object-free renders so that "no object" is learned
        extra = max(64, train_images // 4)
        e_imgs, e_objs = render_set(
            p, ORACLE_TRAIN_SPLIT, extra, resolution, start=train_images, empty=True
        )
        imgs, objs = torch.cat([imgs, e_imgs]), torch.cat([objs, e_objs])
    t_render = time.perf_counter() - t0
    if log:
        log(f"oracle: rendered {train_images} training images in {t_render:.1f}s")
    # Crops with a few pixels of slack so that shifted crops can be taken while training.
    slack = 2
    crops_list = []
    for s in range(0, len(imgs), 256):
        x = imgs[s : s + 256].float() / 127.5 - 1
        oracle.margin += slack
        crops_list.append(oracle.crops(x))
        oracle.margin -= slack
    crops = torch.cat(crops_list)  # (N, g*g, 3, c+2s, c+2s)
    targets = _cell_targets(objs, p)
    n_img, n_cell = crops.shape[:2]
    crops = crops.reshape(n_img * n_cell, *crops.shape[2:])
    targets = {k: v.reshape(-1) for k, v in targets.items()}
    occupied = torch.nonzero(targets["present"] > 0).flatten()
    empty = torch.nonzero(targets["present"] == 0).flatten()
    keep_empty = empty[torch.randperm(len(empty), generator=gen)[: max(len(occupied) // 2, 64)]]
    pool = torch.cat([occupied, keep_empty])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    bs = 128
    steps = epochs * math.ceil(len(pool) / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.15)
    size = cell_px + 2 * oracle.margin
    net.train()
    for epoch in range(epochs):
        order = pool[torch.randperm(len(pool), generator=gen)]
        total = 0.0
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            dx, dy = (int(v) for v in torch.randint(0, 2 * slack + 1, (2,), generator=gen))
            x = crops[idx, :, dy : dy + size, dx : dx + size]
            x = _augment(x.clone(), gen)
            with autocast(precision, "cpu"):
                logits = net(x)
            logits = {k: v.float() for k, v in logits.items()}
            loss = F.binary_cross_entropy_with_logits(logits["present"], targets["present"][idx])
            for a in ATTRS:
                tgt = targets[a][idx]
                if (tgt >= 0).any():
                    loss = loss + F.cross_entropy(logits[a], tgt, ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log:
            log(f"oracle epoch {epoch + 1}/{epochs}: loss {total / len(pool):.4f}")
    net.eval()
    t_train = time.perf_counter() - t0 - t_render
    h_imgs, h_objs = render_set(p, ORACLE_HOLDOUT_SPLIT, holdout_images, resolution)
    acc = oracle.score(h_imgs.float() / 127.5 - 1, h_objs, mentioned_only=False)
    oracle.info = {
        "holdout": {k: round(v, 5) for k, v in acc.items()},
        "train_images": train_images,
        "epochs": epochs,
        "precision": precision,
        "seconds": {
            "render": round(t_render, 2),
            "train": round(t_train, 2),
            "total": round(time.perf_counter() - t0, 2),
        },
    }
    if log:
        log(
            f"oracle trained in {oracle.info['seconds']['total']}s; held-out accuracy {oracle.info['holdout']}"
        )
    return oracle


def oracle_path(
    p: ShapesParams,
    resolution: int,
    cell_px: int,
    cache_dir: str | None = None,
    precision: str = "fp32",
) -> Path:
    root = cache_root(cache_dir if cache_dir is not None else p.cache_dir)
    tag = "" if precision == "fp32" else f"-{precision}"  # trained in bf16: another oracle
    return (
        root
        / "shapes"
        / p.content_key()
        / f"oracle-r{resolution}-c{cell_px}-v{ORACLE_VERSION}{tag}.safetensors"
    )


def load_oracle(
    source: Any,
    cache_dir: str | None = None,
    resolution: int | None = None,
    *,
    cell_px: int | None = None,
    train_images: int = 2500,
    epochs: int = 6,
    retrain: bool = False,
    log: Callable[[str], None] | None = None,
    precision: str = "auto",
) -> ShapesOracle:
    """The oracle for a shapes dataset (or its params) at ``resolution`` (default: its highest).

    Loaded from the cache when present, else trained on fresh renders and saved (safetensors).
    ``precision`` auto trains in bf16 where the CPU runs it natively (t2i_stages.hardware); the
    cache keeps the two apart.
    """
    from safetensors.torch import load_file, save_file

    from t2i_stages.hardware import resolve_precision

    p = _params_of(source)
    if resolution is None:
        resolution = max(getattr(source, "resolutions", None) or p.resolutions)
    cell_px = cell_px or default_cell_px(resolution, p.grid)
    chosen = resolve_precision(precision, "cpu", what="oracle precision").chosen
    path = oracle_path(p, resolution, cell_px, cache_dir, chosen)
    sizes = {
        "shape": len(p.shapes),
        "color": len(p.colors),
        "size": len(p.sizes),
        "fine": len(p.fine_attributes),
    }
    meta_expected = json.dumps(p.content(), sort_keys=True)
    if path.is_file() and not retrain:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
            if meta.get("params") == meta_expected:
                net = CellNet(sizes)
                net.load_state_dict(load_file(str(path)))
                return ShapesOracle(p, resolution, cell_px, net, json.loads(meta.get("info", "{}")))
        except Exception as exc:  # a damaged cache file is retrained, never trusted
            if log:
                log(f"oracle cache {path} unreadable ({exc}); retraining")
    logger = log or (lambda m: print(m, file=sys.stderr, flush=True))
    logger(f"shapes: training the oracle for {resolution}px images (cached at {path})")
    oracle = train_oracle(
        p,
        resolution,
        cell_px=cell_px,
        train_images=train_images,
        epochs=epochs,
        log=log,
        precision=chosen,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(
        oracle.state(),
        str(tmp),
        metadata={"params": meta_expected, "info": json.dumps(oracle.info)},
    )
    tmp.replace(path)
    return oracle


__all__ = ["COLORS", "ShapesOracle", "load_oracle", "score_predictions", "train_oracle"]
