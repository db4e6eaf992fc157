"""What a checkpoint holds of a trainer, and how a resumed trainer takes it back.

Weights (G, its EMA copy, every D, the trained part of the matcher or the text encoder), the
optimizers, every RNG including the noise generator, and the loop's position (epoch, batch,
history, dropped updates), so that a resumed run continues bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..checkpoint import CheckpointError, latest_good_checkpoint, list_checkpoints, save_checkpoint
from ..seeding import rng_state, set_rng_state
from .optimizers import merge_states, split_state

if TYPE_CHECKING:
    from .trainer import Trainer


def component_states(t: Trainer) -> dict[str, dict[str, torch.Tensor]]:
    """Every saved component's state dict, by checkpoint file name."""
    comps = {"generator": t.G.state_dict()}
    if t.ema is not None:
        comps["generator_ema"] = t.ema.model.state_dict()
    for i, d in enumerate(t.Ds):
        comps[f"discriminator_{i}"] = d.state_dict()
    a = t.assembly
    if a.matcher is not None and a.matcher_keys:
        sd = a.matcher.state_dict()
        comps["matcher"] = {k: sd[k] for k in a.matcher_keys if k in sd}
    elif t.recipe.text_encoder is not None:
        comps["text_encoder"] = a.text_encoder.state_dict()
    return comps


def discriminator_states(t: Trainer) -> list[dict]:
    """One optimizer state per discriminator, whether ``train.merge_d_optimizers`` merged them
    (then cut from the merged state: what separate optimizers would have saved) or not."""
    if len(t.opt_ds) == len(t.Ds):
        return [o.state_dict() for o in t.opt_ds]
    (merged,) = t.opt_ds
    return split_state(merged.state_dict())


def save(t: Trainer) -> Path:
    opt = {"generator": t.opt_g.state_dict()}
    opt.update({f"discriminator_{i}": s for i, s in enumerate(discriminator_states(t))})
    rng = rng_state()
    rng["generators"] = {"noise": t.noise.get_state()}
    loop = {
        "epoch": t.epoch,
        "batch_in_epoch": t.batch_in_epoch,
        "history": dict(t.history),
        "skipped_nonfinite": t.guard.skipped,
        "train_seconds": t.train_seconds,
    }
    recipe_text = (t.out / "recipe.resolved.yaml").read_text()
    return save_checkpoint(
        t.out / "checkpoints",
        t.step,
        component_states(t),
        opt,
        rng,
        loop,
        recipe_text,
        keep=t.cfg.keep_checkpoints,
    )


def resume(t: Trainer) -> bool:
    root = t.out / "checkpoints"
    ckpt = latest_good_checkpoint(root, warn=t.log)
    if ckpt is None:
        found = list_checkpoints(root)
        if found:  # never silently start over beside checkpoints that exist but fail
            raise CheckpointError(
                f"{root}: none of the {len(found)} checkpoints verifies (see the warnings "
                "above); move them away or run without --resume"
            )
        t.log(f"no checkpoint in {root}; starting from step 0")
        return False
    comps = ckpt.components
    targets = [("generator", t.G)]
    if t.ema is not None and "generator_ema" in comps:
        targets.append(("generator_ema", t.ema.model))
    targets += [(f"discriminator_{i}", d) for i, d in enumerate(t.Ds)]
    try:
        for name, module in targets:
            what = ckpt.path / f"{name}.safetensors"
            module.load_state_dict(comps[name])
        what = ckpt.path / "optimizers.pt"
        t.opt_g.load_state_dict(ckpt.optimizers["generator"])
        states = [ckpt.optimizers[f"discriminator_{i}"] for i in range(len(t.Ds))]
        if len(t.opt_ds) == len(states):
            for o, sd in zip(t.opt_ds, states, strict=True):
                o.load_state_dict(sd)
        else:  # train.merge_d_optimizers: one optimizer, a parameter group per D
            (merged,) = t.opt_ds
            merged.load_state_dict(merge_states(states))
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"{what}: does not fit this recipe's model ({type(exc).__name__}: {first})"
        ) from None
    set_rng_state(ckpt.rng)
    if "noise" in ckpt.rng.get("generators", {}):
        t.noise.set_state(ckpt.rng["generators"]["noise"])
    t.step = int(ckpt.state["step"])
    t.epoch = int(ckpt.state["epoch"])
    t.batch_in_epoch = int(ckpt.state["batch_in_epoch"])
    t.history = {k: [tuple(x) for x in v] for k, v in ckpt.state.get("history", {}).items()}
    t.guard.restore(int(ckpt.state.get("skipped_nonfinite", 0)), t.step)
    t.train_seconds = float(ckpt.state.get("train_seconds", 0.0))  # 0: saved before it was kept
    t.log(f"resumed from {ckpt.path} (step {t.step})")
    return True


def init_from(t: Trainer, run_dir: Path) -> list[str]:
    """Start ``t`` from the weights of ``run_dir``'s newest good checkpoint (``train.init_from``):
    the generator, and whichever of the discriminators, matcher and text encoder it holds.
    Returns what was loaded; a component that does not fit is a one-line error naming it."""
    ckpt = latest_good_checkpoint(run_dir / "checkpoints", warn=t.log)
    if ckpt is None:
        raise CheckpointError(f"train.init_from: {run_dir / 'checkpoints'}: no usable checkpoint")
    a = t.assembly
    targets = [("generator", t.G)] + [(f"discriminator_{i}", d) for i, d in enumerate(t.Ds)]
    if a.matcher is not None:
        targets.append(("matcher", a.matcher))
    if t.recipe.text_encoder is not None:
        targets.append(("text_encoder", a.text_encoder))
    loaded = []
    for name, module in targets:
        if name not in ckpt.components:
            continue
        try:
            module.load_state_dict(ckpt.components[name], strict=name != "matcher")
        except (RuntimeError, ValueError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise CheckpointError(
                f"train.init_from: {ckpt.path / (name + '.safetensors')}: does not fit this "
                f"recipe's {name}: {' '.join(lines[:2])[:300]}"
            ) from None
        if name == "matcher" and hasattr(module, "trained"):
            module.trained = True
        loaded.append(name)
    t.log(f"init_from: {', '.join(loaded)} from {ckpt.path}")
    return loaded
