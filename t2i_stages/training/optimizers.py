"""The run's optimizers, and one optimizer over every discriminator (``train.merge_d_optimizers``).

Adam's update is elementwise, so one optimizer with a parameter group per discriminator (the
same settings: ``train.optim_d``) computes the very same weights as one optimizer per D, in one
fused or multi-tensor step instead of one per D. A checkpoint keeps one optimizer state per
discriminator either way (``split_state`` cuts the merged state into the states the separate
optimizers would have had, ``merge_states`` joins them), so a run saved with either setting
resumes with the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ..recipe import OptimizerConfig


def make_optimizer(
    cfg: OptimizerConfig, params: Iterable[Any], fused: bool = False
) -> torch.optim.Optimizer:
    """The recipe's optimizer: fused kernels when asked and the device has them, else foreach.

    ``params``: tensors, or parameter groups (``{"params": [...]}`` dicts) that share ``cfg``.
    """
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
    else:
        params = [p for p in params if p.requires_grad]
    kw: dict[str, Any] = dict(lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.type == "adamax":
        return torch.optim.Adamax(params, **kw)
    cls = torch.optim.AdamW if cfg.type == "adamw" else torch.optim.Adam
    for extra in ([{"fused": True}] if fused else []) + [{"foreach": True}, {}]:
        try:
            return cls(params, **extra, **kw)
        except (TypeError, RuntimeError, ValueError):
            continue
    raise AssertionError("unreachable: the plain optimizer always builds")


def is_fused(opt: torch.optim.Optimizer) -> bool:
    return bool(opt.defaults.get("fused"))


def discriminator_optimizers(
    cfg: OptimizerConfig, discriminators: Sequence[torch.nn.Module], fused: bool, merge: bool
) -> list[torch.optim.Optimizer]:
    """One optimizer per discriminator, or (``merge``) one with a parameter group per D."""
    if not merge:
        return [make_optimizer(cfg, d.parameters(), fused) for d in discriminators]
    return [make_optimizer(cfg, [{"params": list(d.parameters())} for d in discriminators], fused)]


def split_state(state: dict[str, Any]) -> list[dict[str, Any]]:
    """A merged optimizer's state dict -> one state dict per parameter group, each as a
    one-group optimizer over that group's parameters would save it."""
    out = []
    for group in state["param_groups"]:
        ids = list(group["params"])
        out.append(
            {
                "state": {n: state["state"][i] for n, i in enumerate(ids) if i in state["state"]},
                "param_groups": [{**group, "params": list(range(len(ids)))}],
            }
        )
    return out


def merge_states(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One-group state dicts (one per D, in order) -> the merged optimizer's state dict."""
    merged: dict[str, Any] = {"state": {}, "param_groups": []}
    offset = 0
    for i, sd in enumerate(states):
        if len(sd["param_groups"]) != 1:
            raise ValueError(
                f"discriminator {i}: its optimizer state has {len(sd['param_groups'])} parameter "
                "groups, one expected"
            )
        group = sd["param_groups"][0]
        ids = list(group["params"])
        remap = {old: offset + n for n, old in enumerate(ids)}
        merged["state"].update({remap[k]: v for k, v in sd["state"].items()})
        merged["param_groups"].append({**group, "params": [remap[k] for k in ids]})
        offset += len(ids)
    return merged
