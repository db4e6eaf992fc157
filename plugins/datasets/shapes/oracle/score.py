"""Scoring the oracle's readings against the ground truth: pairing predicted objects with the
true ones, and per-attribute accuracies.

``score_predictions`` counts an attribute only where the caption mentions it (when the attribute
tensor carries the mention columns); a relation mention is right when the relation holds between
the predicted cells. ``all_mentioned`` is the share of images with every mentioned attribute of
every object right. An attribute no caption in the batch mentions scores ``nan``.
``score_objects`` scores every attribute of every object whatever the caption mentions, with
the share of images that are wholly right (``all_correct``). Plain numpy on attribute rows, so a
metric can score stored predictions without the network.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from t2i_stages.plugin import T2IError

from ..scene import (
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
)

ATTRS = ("shape", "color", "size", "fine")
# Attribute -> its column in the attribute rows (and, for mentions, the mention column).
ATTR_COLUMNS = {"shape": F_SHAPE, "color": F_COLOR, "size": F_SIZE, "fine": F_FINE}
_MCOL = {"color": M_COLOR, "size": M_SIZE, "fine": M_FINE}


def _match(gt: np.ndarray, pred: np.ndarray, grid: int) -> dict[int, int]:
    """Ground-truth row -> predicted row: same cell first; then, among the rest, the pairs
    agreeing on most attributes (then the nearest cells) are taken first."""
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
    pairs = []
    for j in gt_rows:
        if j in match:
            continue
        for k in pr_rows:
            if k in used:
                continue
            agree = sum(int(gt[j, ATTR_COLUMNS[a]] == pred[k, ATTR_COLUMNS[a]]) for a in ATTRS)
            dist = abs(cell_of[k][0] - gt[j, F_ROW]) + abs(cell_of[k][1] - gt[j, F_COL])
            pairs.append((-agree, dist, j, k))
    for _, _, j, k in sorted(pairs):
        if j not in match and k not in used:
            match[j] = k
            used.add(k)
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
    """Score predicted attribute rows against ground truth (the rules: the module docstring)."""
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
                ok = k is not None and pr[k, ATTR_COLUMNS[a]] == gt[j, ATTR_COLUMNS[a]]
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
    unknown = [a for a in attrs if a not in ATTR_COLUMNS]
    if unknown:
        raise T2IError(f"unknown attribute(s) {unknown}; use {', '.join(ATTRS)}")
    out = np.ones(len(gt_np), dtype=bool)
    for b in range(len(gt_np)):
        gt, pr = gt_np[b], pred_np[b]
        match = _match(gt, pr, grid)
        for j in (j for j in range(len(gt)) if gt[j, F_PRESENT] == 1):
            k = match.get(j)
            ok = k is not None and all(
                pr[k, ATTR_COLUMNS[a]] == gt[j, ATTR_COLUMNS[a]] for a in attrs
            )
            if ok and position:
                ok = pr[k, F_ROW] == gt[j, F_ROW] and pr[k, F_COL] == gt[j, F_COL]
            if not ok:
                out[b] = False
                break
    return out


OBJECT_ATTRS = (*ATTRS, "position")


def score_objects(
    pred: torch.Tensor | np.ndarray, attributes: torch.Tensor | np.ndarray, grid: int
) -> dict[str, float]:
    """Every object's every attribute against the scene's ground truth, mentioned or not.

    Per attribute (shape, colour, size, fine, position = the grid cell): the share of all
    ground-truth objects read right; ``all`` the share of objects with all five right;
    ``all_correct`` the share of images whose object count is right and whose every object has
    all five right (an extra generated object fails the image). Objects are paired as in
    ``score_predictions``: each true object with the predicted one in its own cell, else the
    unpaired prediction agreeing on most attributes (then the nearest cell); a true object
    left unpaired is wrong on every attribute.
    """
    pred_np = np.asarray(pred.cpu() if hasattr(pred, "cpu") else pred)
    gt_np = np.asarray(attributes.cpu() if hasattr(attributes, "cpu") else attributes)
    if gt_np.ndim != 3 or pred_np.ndim != 3 or gt_np.shape[0] != pred_np.shape[0]:
        raise T2IError(
            f"attributes must be (B, max_objects, 7 or 14) matching the images, got {gt_np.shape}"
        )
    right = dict.fromkeys(OBJECT_ATTRS, 0)
    objects_ok = images_ok = n_objects = 0
    for b in range(len(gt_np)):
        gt, pr = gt_np[b], pred_np[b]
        match = _match(gt, pr, grid)
        gt_rows = [j for j in range(len(gt)) if gt[j, F_PRESENT] == 1]
        image_ok = len(gt_rows) == int((pr[:, F_PRESENT] == 1).sum())
        for j in gt_rows:
            k = match.get(j)
            n_objects += 1
            ok = {a: False for a in OBJECT_ATTRS}
            if k is not None:
                ok = {a: bool(pr[k, ATTR_COLUMNS[a]] == gt[j, ATTR_COLUMNS[a]]) for a in ATTRS}
                ok["position"] = bool(pr[k, F_ROW] == gt[j, F_ROW] and pr[k, F_COL] == gt[j, F_COL])
            for a in OBJECT_ATTRS:
                right[a] += int(ok[a])
            every = all(ok.values())
            objects_ok += int(every)
            image_ok &= every
        images_ok += int(image_ok)
    out = {a: (right[a] / n_objects if n_objects else math.nan) for a in OBJECT_ATTRS}
    out["all"] = objects_ok / n_objects if n_objects else math.nan
    out["all_correct"] = images_ok / len(gt_np) if len(gt_np) else math.nan
    out["n_images"] = float(len(gt_np))
    out["n_objects"] = float(n_objects)
    return out
