"""Training the oracle: rendering its training set (scene streams no split uses), crops of
every cell with augmentation, and a held-out measurement.

It is trained on renders of the dataset's own params at the resolution it will judge, with
noise, colour and shift augmentation so that imperfect generated images are still read.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from ..params import FINES, SHAPES, SIZES, ShapesParams
from ..render import render_scene
from ..scene import COLOR_NAMES, F_COL, F_PRESENT, F_ROW, sample_scene
from .model import CellNet, ShapesOracle, default_cell_px, head_sizes
from .score import ATTR_COLUMNS, ATTRS

ORACLE_TRAIN_SPLIT = 2  # scene streams distinct from train (0) and test (1)
ORACLE_HOLDOUT_SPLIT = 3


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
                t[a][i, c] = lookup[a][int(o[ATTR_COLUMNS[a]])]
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
    from t2i_stages.plugin import autocast

    t0 = time.perf_counter()
    cell_px = cell_px or default_cell_px(resolution, p.grid)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = CellNet(head_sizes(p))
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
