"""The GAN training loop: per-stage discriminator updates, then one generator update.

Composed entirely from the recipe: the generator, one discriminator per stage, the frozen text
side (the matcher's text encoder, or an explicit ``text_encoder``), and the losses the recipe
names with their weights and stages. Runs the same on one CPU process or under torchrun.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader

from ..build import write_resolved_recipe
from ..errors import T2IError
from ..recipe import Recipe, resolved_recipe
from ..recipe.diff import changed_fields
from ..recipe.validate import RECORD_FIELDS
from ..registry import Registry
from ..signals import StopRequests
from .budget import StepClock, StopReason, stop_banner
from .checkpoint import (
    CheckpointError,
    check_checkpoint_dir,
    estimate_checkpoint_bytes,
    latest_good_checkpoint,
    list_checkpoints,
    save_checkpoint,
)
from .data import ResumableSampler
from .ema import EMA
from .runtime import Runtime, rng_state, seed_everything, set_rng_state, unwrap


class DivergenceError(T2IError):
    """A loss or gradient became NaN or infinite."""


def _workers_ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the main process.

    A scheduler's SIGTERM (or Ctrl-C) reaches the whole process group; a worker it killed would
    make the main process raise mid-step instead of finishing the step and checkpointing. The
    main process shuts its workers down itself at the end of ``fit`` (it cannot rely on
    multiprocessing's SIGTERM at exit), and they exit if it dies.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Critic:
    """Adapts a discriminator plugin to what adversarial losses ask for (see plugins.losses)."""

    def __init__(self, call: torch.nn.Module, module: torch.nn.Module):
        self.call, self.module = call, module

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.call(images)

    def uncond(self, features: torch.Tensor) -> torch.Tensor | None:
        return self.module.uncond_logits(features)

    def cond(self, features: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor | None:
        if condition is None:
            return None
        return self.module.cond_logits(features, condition)


def make_optimizer(cfg, params, fused: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimizer: fused kernels when asked and the device has them, else foreach."""
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


@dataclass
class Components:
    """Everything a run trains or uses, built from the recipe."""

    generator: torch.nn.Module
    discriminators: list[torch.nn.Module]
    train_data: Any
    test_data: Any
    text_encoder: Any  # object with encode_text(tokens, mask) -> TextFeatures (frozen)
    matcher: Any | None
    losses: list[tuple[Any, Any]] = field(default_factory=list)  # (loss object, LossSlot)
    matcher_report: dict | None = None
    matcher_keys: list[str] = field(default_factory=list)  # what the run saves of the matcher


def _frozen(module: torch.nn.Module) -> torch.nn.Module:
    return module.eval().requires_grad_(False)


def build_training_components(
    recipe: Recipe, registry: Registry, runtime: Runtime, log=print
) -> Components:
    """Build G, the datasets at G's resolutions, the (pretrained) matcher, the Ds and the losses."""
    generator = registry.build("generator", recipe.generator)
    resolutions = list(getattr(generator, "resolutions", []))
    # Rendering datasets and pretraining the matcher draw random numbers only when their cache is
    # cold; keep the global RNGs out of it so the Ds' init (and the run) never depends on a cache.
    outer_rng = rng_state()
    # rank 0 builds caches (dataset renders, matcher pretraining) first; the others then read them
    if not runtime.is_main:
        runtime.barrier()
    train = registry.build("dataset", recipe.data.dataset, split="train", resolutions=resolutions)
    test = registry.build("dataset", recipe.data.dataset, split="test", resolutions=resolutions)
    vocab = getattr(train, "vocab", None)
    ctx = {"vocab": vocab, "vocab_size": len(vocab)} if vocab is not None else {}
    matcher, report, matcher_state = None, None, None
    if recipe.matcher is not None:
        from ..pretrain import pretrain_matcher

        result = pretrain_matcher(
            recipe.matcher,
            train,
            test,
            registry=registry,
            dataset_key=resolved_recipe(recipe, registry)["data"]["dataset"],
            seed=recipe.seed,
            device=runtime.device,
            context=ctx,
            log=log if runtime.is_main else (lambda *_: None),
        )
        matcher = result.matcher.to(runtime.device)
        matcher_state = {k: v for k, v in matcher.trainable_state_dict().items()}
        matcher = _frozen(matcher)
        if result.r_precision is not None:
            rp = result.r_precision
            report = {
                "r_precision": rp.mean,
                "r_precision_std": rp.std,
                "cached": result.from_cache,
                "how": result.how,
                "steps": result.steps,
                "target_steps": result.target_steps,
                "complete": result.complete,
            }
    if runtime.is_main:
        runtime.barrier()
    set_rng_state(outer_rng)
    if "cuda" not in outer_rng and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(recipe.seed + runtime.rank)  # as seed_everything left it
    if recipe.text_encoder is not None:
        text_encoder = _frozen(registry.build("text_encoder", recipe.text_encoder, **ctx))
        text_encoder = text_encoder.to(runtime.device)
    elif matcher is not None:
        text_encoder = matcher
    else:
        raise T2IError("recipe: a GAN needs text features: set 'matcher' or 'text_encoder'")
    g_text_dim = getattr(generator, "text_dim", None)
    e_text_dim = getattr(text_encoder, "text_dim", None)
    if g_text_dim and e_text_dim and g_text_dim != e_text_dim:
        raise T2IError(
            f"generator.params.text_dim is {g_text_dim} but the text encoder gives {e_text_dim}"
        )
    if len(recipe.discriminators) not in (0, len(resolutions)):
        raise T2IError(
            f"discriminators: {len(recipe.discriminators)} given for {len(resolutions)} generator "
            f"stages {resolutions}; give one per stage"
        )
    discs = [
        registry.build("discriminator", slot, resolution=res, stage=i)
        for i, (slot, res) in enumerate(zip(recipe.discriminators, resolutions, strict=False))
    ]
    losses = [(registry.build("loss", slot), slot) for slot in recipe.losses]
    roles = [getattr(obj, "role", "matching") for obj, _ in losses]
    if "adversarial" not in roles:
        raise T2IError("losses: the recipe names no adversarial loss")
    if "matching" in roles and matcher is None:
        raise T2IError("losses: a matching loss needs a 'matcher' in the recipe")
    for _, slot in losses:
        for s in slot.stages or []:
            if not 0 <= s < len(resolutions):
                raise T2IError(
                    f"losses: '{slot.type}' names stage {s}; the generator has stages "
                    f"0..{len(resolutions) - 1}"
                )
    comps = Components(generator, discs, train, test, text_encoder, matcher, losses, report)
    comps.matcher_keys = sorted(matcher_state) if matcher_state is not None else []
    return comps


class Trainer:
    """Owns a run folder and trains the recipe's GAN in it (``t2i-stages run``)."""

    def __init__(
        self,
        recipe: Recipe,
        registry: Registry,
        out_dir: str | Path,
        runtime: Runtime | None = None,
        log=print,
    ):
        self.recipe, self.registry = recipe, registry
        self.out = Path(out_dir)
        self.rt = runtime or Runtime.create(precision=recipe.train.precision)
        self.log = log if self.rt.is_main else (lambda *a, **k: None)
        self.cfg = recipe.train
        if self.rt.thread_choice is None:
            self.rt.set_threads(self.cfg.threads)
        seed_everything(recipe.seed + self.rt.rank)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._stops = StopRequests()  # SIGINT/SIGTERM while fit runs
        self.stop: StopReason | None = None  # why fit() ended, once it has
        self.skipped_nonfinite = 0  # updates dropped for a NaN/inf loss or gradient
        self.resume_command: str | None = None  # the exact command to print after a signal
        self.c = build_training_components(recipe, registry, self.rt, self.log)
        dev = self.rt.device
        fmt = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        self.G = self.c.generator.to(dev, memory_format=fmt)
        self.Ds = [d.to(dev, memory_format=fmt) for d in self.c.discriminators]
        self.G_train = self._compiled(self.rt.wrap(self.G))
        self.Ds_train = [self._compiled(self.rt.wrap(d)) for d in self.Ds]
        fused = self.cfg.fused_optimizer
        self.opt_g = make_optimizer(self.cfg.optim_g, self.G.parameters(), fused)
        self.opt_ds = [make_optimizer(self.cfg.optim_d, d.parameters(), fused) for d in self.Ds]
        self.deferred_check = self.cfg.finite_check == "deferred"
        if self.deferred_check and not all(map(is_fused, [self.opt_g, *self.opt_ds])):
            raise T2IError(
                "train.finite_check: 'deferred' drops bad updates inside torch's fused Adam/AdamW; "
                f"optim_g is {self.cfg.optim_g.type!r}, optim_d {self.cfg.optim_d.type!r}, "
                f"fused_optimizer {fused} on {dev.type} (use adam/adamw with fused_optimizer true, "
                "or finite_check 'step')"
            )
        self.nonfinite_count = torch.zeros((), device=dev)  # deferred mode: device-side tally
        self.checked_step = 0  # deferred mode: the step the tally was last read at
        self.ema = None
        if self.cfg.ema_decay is not None:
            self.ema = EMA(self.G, self.cfg.ema_decay, self.cfg.ema_warmup)
        self.noise = torch.Generator(device=dev.type).manual_seed(recipe.seed * 7919 + self.rt.rank)
        n = len(self.c.train_data)
        self.sampler = ResumableSampler(n, recipe.seed, self.rt.rank, self.rt.world_size)
        self.local_batch = recipe.data.batch_size // self.rt.world_size
        if self.local_batch < 2:
            raise T2IError(
                f"data.batch_size {recipe.data.batch_size} over {self.rt.world_size} ranks leaves "
                "fewer than 2 samples per rank (mismatched pairs need 2)"
            )
        self.steps_per_epoch = len(self.sampler) // self.local_batch
        if self.steps_per_epoch < self.cfg.grad_accum:
            raise T2IError("data: the train split is smaller than one (accumulated) batch")
        self.fixed = self._fixed_captions()

    # ------------------------------------------------------------------ data

    def _loader(self) -> DataLoader:
        ds = self.c.train_data
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, self.batch_in_epoch * self.local_batch)
        return DataLoader(
            ds,
            batch_size=self.local_batch,
            sampler=self.sampler,
            drop_last=True,
            num_workers=self.recipe.data.num_workers,
            collate_fn=getattr(ds, "collate", None),
            pin_memory=self.rt.device.type == "cuda",
            persistent_workers=False,
            worker_init_fn=_workers_ignore_stop_signals if self.recipe.data.num_workers else None,
        )

    def _batches(self):
        """Endless batches, advancing epochs; the position is kept for checkpoints."""
        while True:
            for batch in self._loader():
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    def _compiled(self, module: torch.nn.Module) -> torch.nn.Module:
        return torch.compile(module) if self.cfg.compile else module

    def _to_device(self, batch: dict) -> dict:
        dev = self.rt.device
        fmt = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        out = dict(batch)
        out["images"] = [x.to(dev, non_blocking=True, memory_format=fmt) for x in batch["images"]]
        for k in ("tokens", "mask", "class_id"):
            if k in batch and torch.is_tensor(batch[k]):
                out[k] = batch[k].to(dev, non_blocking=True)
        return out

    def _fixed_captions(self, n: int = 16) -> dict:
        """A fixed set of test captions (and noise) for sample grids through training."""
        ds = self.c.test_data
        items = [ds[i] for i in range(min(n, len(ds)))]
        collate = getattr(ds, "collate", None) or torch.utils.data.default_collate
        batch = collate(items)
        g = torch.Generator().manual_seed(12345)
        z = torch.randn(len(items), self.G.z_dim, generator=g)
        eps = torch.randn(len(items), max(self.G.eps_dim, 1), generator=g)[:, : self.G.eps_dim]
        return {"batch": batch, "z": z, "eps": eps}

    # ------------------------------------------------------------------ one step

    def _text(self, batch: dict):
        with torch.no_grad():
            text = self.c.text_encoder.encode_text(batch["tokens"], batch["mask"])
        return type(text)(*(t.detach() if torch.is_tensor(t) else t for t in text))

    def _sample_noise(self, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        dev = self.rt.device
        z = torch.randn(b, self.G.z_dim, generator=self.noise, device=dev)
        eps = None
        if self.G.eps_dim:
            eps = torch.randn(b, self.G.eps_dim, generator=self.noise, device=dev)
        return z, eps

    def train_step(self, batches: list[dict]) -> dict[str, torch.Tensor]:
        """One iteration: every D update, then the G update (over ``grad_accum`` micro-batches)."""
        k = len(batches)
        logs: dict[str, torch.Tensor] = {}
        adv = [(o, s) for o, s in self.c.losses if getattr(o, "role", "matching") == "adversarial"]
        d_terms: dict[str, torch.Tensor] = {}  # every loss term, named, for divergence messages
        g_terms: dict[str, torch.Tensor] = {}
        texts = [self._text(b) for b in batches]
        fakes = []
        # ---- discriminators
        for opt in self.opt_ds:
            opt.zero_grad(set_to_none=True)
        for batch, text in zip(batches, texts, strict=True):
            b = batch["tokens"].shape[0]
            z, eps = self._sample_noise(b)
            with self.rt.autocast():
                if k == 1:
                    out = self.G_train(z, eps, text)
                else:
                    with torch.no_grad():
                        out = self.G_train(z, eps, text)
            fakes.append((z, eps, out))
            for i, (D, Dt) in enumerate(zip(self.Ds, self.Ds_train, strict=True)):
                s = i  # discriminator i judges stage i
                critic = Critic(Dt, D)
                cond = D.condition(text)
                terms = []
                with self.rt.autocast():
                    for obj, slot in adv:
                        if slot.stages is None or s in slot.stages:
                            v = obj.d_loss(critic, batch["images"][s], out.images[s].detach(), cond)
                            terms.append(slot.weight * v)
                            key = f"discriminator {i} (stage {s}) loss '{slot.type}'"
                            d_terms[key] = d_terms.get(key, 0) + v.detach() / k
                    loss = sum(terms)
                (loss / k).backward()
                logs[f"D{i}"] = logs.get(f"D{i}", 0) + loss.detach() / k
        d_modules = [(f"discriminator {i} (stage {i})", d) for i, d in enumerate(self.Ds)]
        if self.deferred_check:
            self._drop_on_device_if_nonfinite(d_terms, d_modules, self.opt_ds)
        else:
            problem = self._nonfinite(d_terms, d_modules)
            if problem is not None:
                return self._skip_update(problem, logs, [*self.opt_ds, self.opt_g])
        for opt in self.opt_ds:
            opt.step()
        # ---- generator
        self.opt_g.zero_grad(set_to_none=True)
        for d in self.Ds:
            d.requires_grad_(False)
        try:
            for batch, text, (z, eps, out) in zip(batches, texts, fakes, strict=True):
                if k > 1:
                    with self.rt.autocast():
                        out = self.G_train(z, eps, text)
                total, parts = self._generator_loss(batch, text, out, g_terms, k)
                (total / k).backward()
                for name, v in parts.items():
                    logs[name] = logs.get(name, 0) + v.detach() / k
                logs["G_total"] = logs.get("G_total", 0) + total.detach() / k
        finally:
            for d in self.Ds:
                d.requires_grad_(True)
        if self.deferred_check:
            self._drop_on_device_if_nonfinite(g_terms, [("generator", self.G)], [self.opt_g])
        else:
            problem = self._nonfinite(g_terms, [("generator", self.G)])
            if problem is not None:
                return self._skip_update(problem, logs, [self.opt_g])
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.G, self.step)
        return logs

    def _generator_loss(
        self, batch, text, out, terms: dict | None = None, k: int = 1
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's total loss and its logged parts; ``terms`` collects each term under a full name."""
        parts: dict[str, torch.Tensor] = {}
        terms = {} if terms is None else terms

        def note(name: str, v: torch.Tensor) -> None:
            terms[name] = terms.get(name, 0) + v.detach() / k

        total = torch.zeros((), device=self.rt.device)
        n_stages = len(out.images)
        image_feats: dict[int, Any] = {}
        for obj, slot in self.c.losses:
            role = getattr(obj, "role", "matching")
            stages = slot.stages if slot.stages is not None else list(range(n_stages))
            if role == "adversarial":
                for i, D in enumerate(self.Ds):
                    s = i  # discriminator i judges stage i
                    if s not in stages:
                        continue
                    with self.rt.autocast():
                        v = obj.g_loss(Critic(D, D), out.images[s], D.condition(text))
                    parts[f"G{i}_adv"] = parts.get(f"G{i}_adv", 0) + v
                    note(f"generator loss '{slot.type}' against discriminator {i} (stage {s})", v)
                    total = total + slot.weight * v
            elif role == "kl":
                if out.mu is not None:
                    v = obj(out.mu, out.logvar)
                    parts["KL"] = v
                    note(f"generator loss '{slot.type}' (conditioning augmentation KL)", v)
                    total = total + slot.weight * v
            else:  # matching losses score generated images against their captions
                for s in stages:
                    if s not in image_feats:  # one matcher pass per stage, shared by its losses
                        with self.rt.autocast():
                            feats = self.c.matcher.encode_image(out.images[s])
                        image_feats[s] = type(feats)(*(f.float() for f in feats))  # fp32 losses
                    v = obj(image_feats[s], text, batch.get("class_id"))
                    parts[f"{slot.type}@{s}"] = v
                    note(f"generator loss '{slot.type}' at stage {s}", v)
                    total = total + slot.weight * v
        return total, parts

    def _nonfinite(
        self, terms: dict[str, torch.Tensor], modules: list[tuple[str, torch.nn.Module]]
    ) -> str | None:
        """Name the first NaN/inf loss term or gradient of this update, or None if all is finite.

        Runs before the optimizer step, so a bad update never reaches the weights. The common
        case costs one device-to-host sync: every term and the max |grad| of every parameter
        are reduced to one flag.
        """
        grads = [
            [(n, p.grad) for n, p in m.named_parameters() if p.grad is not None] for _, m in modules
        ]
        maxes = [
            torch._foreach_norm([g for _, g in gs], float("inf")) if gs else [] for gs in grads
        ]
        values = [t.float().reshape(()) for t in terms.values() if torch.is_tensor(t)]
        values += [x.float() for ms in maxes for x in ms]
        local_bad = bool(values) and not bool(torch.isfinite(torch.stack(values)).all())
        if not self._agree(local_bad):  # every rank skips or stops together
            return None
        if not local_bad:
            return "another rank reported a non-finite loss or gradient"
        for name, v in terms.items():
            if torch.is_tensor(v) and not torch.isfinite(v).all():
                return f"{name} is {v.float().item()}"
        for (what, _), gs, ms in zip(modules, grads, maxes, strict=True):
            bad = [n for (n, _), x in zip(gs, ms, strict=True) if not torch.isfinite(x)]
            if bad:
                parts = sorted({".".join(n.split(".")[:2]) for n in bad})
                return (
                    f"{what} gradient is not finite in {len(bad)} parameter(s) under "
                    f"{', '.join(parts)} (first: '{bad[0]}'), though every loss term was finite"
                )
        return "a loss or gradient is not finite"

    def _drop_on_device_if_nonfinite(
        self,
        terms: dict[str, torch.Tensor],
        modules: list[tuple[str, torch.nn.Module]],
        optimizers: list[torch.optim.Optimizer],
    ) -> None:
        """Deferred check: hand the fused optimizers a device flag that drops a bad update.

        No host sync: the flag (1.0 when any loss term or gradient is NaN/inf) stays on the
        device, the fused kernels skip their update when it is set (as under a GradScaler), and
        a running tally is read at logging steps by :meth:`check_deferred`.
        """
        grads = [p.grad for _, m in modules for p in m.parameters() if p.grad is not None]
        values = [t.float().reshape(()) for t in terms.values() if torch.is_tensor(t)]
        if grads:
            values += [x.float() for x in torch._foreach_norm(grads, float("inf"))]
        if not values:
            return
        flag = (~torch.isfinite(torch.stack(values)).all()).float()
        if self.rt.distributed:  # every rank drops the update together
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        for opt in optimizers:
            opt.found_inf = flag
        self.nonfinite_count += flag

    def check_deferred(self) -> None:
        """Read the deferred tally (one sync); stop when it passes ``train.skip_nonfinite``."""
        if not self.deferred_check:
            return
        count = int(self.nonfinite_count.item())
        new = count - self.skipped_nonfinite
        since, self.checked_step = self.checked_step, self.step
        if new <= 0:
            return
        self.skipped_nonfinite = count
        where = f"steps {since + 1}..{self.step}: {new} update(s) had a non-finite loss or gradient"
        limit = self.cfg.skip_nonfinite
        if count > limit:
            raise DivergenceError(
                f"{where} (dropped on the device; train.finite_check 'deferred' does not name the "
                f"term: resume with finite_check 'step' to find it); {count} in all, more than "
                f"train.skip_nonfinite {limit}; training stopped. The last good checkpoint is kept "
                f"in {self.out / 'checkpoints'}"
            )
        self.log(f"warning: {where}; dropped ({count} of {limit} allowed by train.skip_nonfinite)")

    def _skip_update(self, problem: str, logs: dict, optimizers: list) -> dict[str, torch.Tensor]:
        """Drop this update (``train.skip_nonfinite`` allows it) or stop the run."""
        where = f"step {self.step + 1}: {problem}"
        limit = self.cfg.skip_nonfinite
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        if self.skipped_nonfinite >= limit:
            after = f" after skipping {limit} update(s) (train.skip_nonfinite)" if limit else ""
            raise DivergenceError(
                f"{where}; training stopped{after}. The last good checkpoint is kept in "
                f"{self.out / 'checkpoints'}"
            )
        self.skipped_nonfinite += 1
        self.log(
            f"warning: {where}; update skipped ({self.skipped_nonfinite} of {limit} allowed by "
            "train.skip_nonfinite)"
        )
        kept = {k: v for k, v in logs.items() if torch.is_tensor(v) and torch.isfinite(v).all()}
        kept["nonfinite_skipped"] = torch.tensor(float(self.skipped_nonfinite))
        return kept

    # ------------------------------------------------------------------ checkpoints

    def _component_states(self) -> dict[str, dict[str, torch.Tensor]]:
        comps = {"generator": self.G.state_dict()}
        if self.ema is not None:
            comps["generator_ema"] = self.ema.model.state_dict()
        for i, d in enumerate(self.Ds):
            comps[f"discriminator_{i}"] = d.state_dict()
        if self.c.matcher is not None and self.c.matcher_keys:
            sd = self.c.matcher.state_dict()
            comps["matcher"] = {k: sd[k] for k in self.c.matcher_keys if k in sd}
        elif self.recipe.text_encoder is not None:
            comps["text_encoder"] = self.c.text_encoder.state_dict()
        return comps

    def save(self) -> Path | None:
        if not self.rt.is_main:
            return None
        opt = {"generator": self.opt_g.state_dict()}
        opt.update({f"discriminator_{i}": o.state_dict() for i, o in enumerate(self.opt_ds)})
        rng = rng_state()
        rng["generators"] = {"noise": self.noise.get_state()}
        state = {
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "history": {k: v for k, v in self.history.items()},
            "skipped_nonfinite": self.skipped_nonfinite,
        }
        recipe_text = (self.out / "recipe.resolved.yaml").read_text()
        return save_checkpoint(
            self.out / "checkpoints",
            self.step,
            self._component_states(),
            opt,
            rng,
            state,
            recipe_text,
            keep=self.cfg.keep_checkpoints,
        )

    def resume(self) -> bool:
        root = self.out / "checkpoints"
        ckpt = latest_good_checkpoint(root, warn=self.log)
        if ckpt is None:
            found = list_checkpoints(root)
            if found:  # never silently start over beside checkpoints that exist but fail
                raise CheckpointError(
                    f"{root}: none of the {len(found)} checkpoints verifies (see the warnings "
                    "above); move them away or run without --resume"
                )
            self.log(f"no checkpoint in {root}; starting from step 0")
            return False
        comps = ckpt.components
        targets = [("generator", self.G)]
        if self.ema is not None and "generator_ema" in comps:
            targets.append(("generator_ema", self.ema.model))
        targets += [(f"discriminator_{i}", d) for i, d in enumerate(self.Ds)]
        try:
            for name, module in targets:
                what = ckpt.path / f"{name}.safetensors"
                module.load_state_dict(comps[name])
            what = ckpt.path / "optimizers.pt"
            self.opt_g.load_state_dict(ckpt.optimizers["generator"])
            for i, o in enumerate(self.opt_ds):
                o.load_state_dict(ckpt.optimizers[f"discriminator_{i}"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CheckpointError(
                f"{what}: does not fit this recipe's model ({type(exc).__name__}: {first})"
            ) from None
        set_rng_state(ckpt.rng)
        if "noise" in ckpt.rng.get("generators", {}):
            self.noise.set_state(ckpt.rng["generators"]["noise"])
        self.step = int(ckpt.state["step"])
        self.epoch = int(ckpt.state["epoch"])
        self.batch_in_epoch = int(ckpt.state["batch_in_epoch"])
        self.history = {k: [tuple(x) for x in v] for k, v in ckpt.state.get("history", {}).items()}
        self.skipped_nonfinite = int(ckpt.state.get("skipped_nonfinite", 0))
        self.nonfinite_count.fill_(float(self.skipped_nonfinite))
        self.checked_step = self.step
        self.log(f"resumed from {ckpt.path} (step {self.step})")
        return True

    # ------------------------------------------------------------------ loop

    def fit(self) -> dict:
        """Train until ``max_steps`` (or the time budget, or a signal); returns a summary."""
        from .outputs import RunOutputs

        cfg = self.cfg
        if self.rt.is_main:
            self.check_output_space()
        outputs = RunOutputs(self) if self.rt.is_main else None
        self._stops.install()
        start = time.time()
        batches = self._batches()
        progress = None
        if self.rt.is_main:
            from tqdm import tqdm

            progress = tqdm(
                total=cfg.max_steps, initial=self.step, desc="train", dynamic_ncols=True
            )
        images_seen, t_last = 0, time.time()
        saved = self.step if list_checkpoints(self.out / "checkpoints") else -1
        clock = StepClock(self.step, cfg.max_steps, cfg.max_minutes, self.recipe.data.batch_size)
        over_time = False
        try:
            while self.step < cfg.max_steps:
                group = [self._to_device(next(batches)) for _ in range(cfg.grad_accum)]
                self.G_train.train()
                for d in self.Ds_train:
                    d.train()
                logs = self.train_step(group)
                self.step += 1
                images_seen += sum(b["tokens"].shape[0] for b in group) * self.rt.world_size
                if progress is not None:
                    progress.update(1)
                estimate = clock.tick(self.step)
                if estimate and progress is not None:
                    progress.write(estimate)
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                    self.check_deferred()
                    values = {k: float(v) for k, v in logs.items()}
                    now = time.time()
                    values["images_per_s"] = images_seen / max(now - t_last, 1e-9)
                    images_seen, t_last = 0, now
                    for name, v in values.items():
                        self.history.setdefault(name, []).append((self.step, v))
                    if progress is not None:
                        short = {
                            k: f"{v:.3g}"
                            for k, v in values.items()
                            if not k.startswith("G") or k == "G_total"
                        }
                        progress.set_postfix(short, refresh=False)
                    if outputs is not None:
                        outputs.scalars(values)
                if outputs is not None and (self.step % cfg.sample_every == 0):
                    outputs.samples()
                if self.step % cfg.ckpt_every == 0:
                    self.check_deferred()  # never checkpoint past an unreported divergence
                    self.save()
                    saved = self.step
                over_time = (
                    cfg.max_minutes is not None and (time.time() - start) > 60 * cfg.max_minutes
                )
                if self._agree(over_time or self._stops.signal is not None):
                    break
            if saved != self.step:  # handlers stay in place until this checkpoint is on disk
                self.check_deferred()
                self.save()
        finally:
            # shut the DataLoader workers down now: at interpreter exit multiprocessing would
            # SIGTERM them, which they ignore, and then wait for them forever
            batches.close()
            if progress is not None:
                progress.close()
            self._stops.restore()
        seconds = time.time() - start
        by = "signal" if self._stops.signal else "max_minutes" if over_time else "max_steps"
        speed = clock.batch / clock.seconds_per_step if clock.seconds_per_step else None
        self.stop = StopReason(
            by, self.step, cfg.max_steps, seconds / 60, speed, cfg.max_minutes, self._stops.signal
        )
        if outputs is not None:
            outputs.samples()
            outputs.finish_training()
        summary = {
            "step": self.step,
            "seconds": seconds,
            "signal": self._stops.signal,
            "skipped_nonfinite": self.skipped_nonfinite,
            "stopped_by": self.stop.text(),
            "stop": self.stop.to_dict(),
        }
        if self.stop.advice():
            self.log(stop_banner(self.stop))
        if self._stops.signal:
            command = self.resume_command or f"t2i-stages run RECIPE --resume {self.out}"
            summary["resume_command"] = command
            self.log(
                f"stopped by {self._stops.signal} at step {self.step}; checkpoint written. "
                f"Resume with: {command}"
            )
        return summary

    def check_output_space(self) -> int:
        """Fail before training if the checkpoint folder is not writable or too small.

        Returns the estimated size in bytes of one checkpoint (every component's tensors and
        the Adam moments of the trained parameters).
        """
        trainable = sum(
            p.numel() for m in (self.G, *self.Ds) for p in m.parameters() if p.requires_grad
        )
        needed = estimate_checkpoint_bytes(self._component_states(), trainable)
        check_checkpoint_dir(self.out / "checkpoints", needed)
        return needed

    def _agree(self, flag: bool) -> bool:
        """All ranks stop together when any wants to."""
        if not self.rt.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.rt.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)

    # ------------------------------------------------------------------ generation

    @property
    def sampler_generator(self) -> torch.nn.Module:
        return self.ema.model if self.ema is not None else unwrap(self.G)

    @torch.no_grad()
    def generate(self, batch: dict, z: torch.Tensor, eps: torch.Tensor | None):
        batch = self._to_device(batch)
        G = self.sampler_generator
        was = G.training
        G.eval()
        try:
            text = self._text(batch)
            eps_d = eps.to(self.rt.device) if eps is not None and eps.numel() else None
            return G(z.to(self.rt.device), eps_d, text)
        finally:
            G.train(was)


# Run-length settings a resume may change without --allow-changes: they decide how long the
# run goes on and how often it reports, not what it trains.
RESUME_FREE_FIELDS = (
    "train.max_steps",
    "train.max_minutes",
    "train.log_every",
    "train.sample_every",
    "train.ckpt_every",
    "train.keep_checkpoints",
)


def prepare_run_folder(
    recipe: Recipe,
    registry: Registry,
    out: Path,
    resume: bool,
    runtime: dict | None = None,
    allow_changes: bool = False,
    log=print,
) -> list[str]:
    """Create the run folder and write the resolved recipe (with ``runtime``'s decisions).

    A fresh run refuses a folder with checkpoints. A resumed run refuses a recipe that differs
    from the one the run started with, listing the fields; ``allow_changes`` accepts them, keeps
    the earlier resolved recipe beside the new one and records the change in
    ``recipe.changes.yaml``. Returns the changed fields (``path: old -> new``).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise T2IError(
            f"{out}: cannot create the run folder ({exc.strerror or exc}); choose another --out"
        ) from None
    if not resume and list_checkpoints(out / "checkpoints"):
        raise T2IError(
            f"{out}: holds the checkpoints of an earlier run; continue it with --resume, "
            "or choose another --out (nothing was overwritten)"
        )
    existing = out / "recipe.resolved.yaml"
    new = json.loads(json.dumps(resolved_recipe(recipe, registry)))
    changes: list[str] = []
    if resume and existing.exists():
        old = read_run_yaml(existing)
        strip = lambda d: {k: v for k, v in d.items() if k not in RECORD_FIELDS}  # noqa: E731
        fields = changed_fields(strip(old), strip(new))
        changes = [line for _, line in fields]
        guarded = [line for path, line in fields if path not in RESUME_FREE_FIELDS]
        if guarded and not allow_changes:
            shown = "; ".join(guarded[:8]) + (
                f"; ... {len(guarded) - 8} more" if len(guarded) > 8 else ""
            )
            raise T2IError(
                f"{existing}: the recipe differs from the one this run was started with: {shown}. "
                "Resume with the run's own recipe (t2i-stages run --resume RUN), or pass "
                "--allow-changes to continue with the changes recorded"
            )
        if changes:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            shutil.copyfile(existing, out / f"recipe.resolved.before-{stamp}.yaml")
            record = out / "recipe.changes.yaml"
            entries = read_run_yaml(record) if record.is_file() else []
            entries = entries if isinstance(entries, list) else []
            entries.append({"time": stamp, "allowed": bool(guarded), "changes": changes})
            record.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
            log(f"resume: the recipe changed ({len(changes)} field(s)), recorded in {record}:")
            for line in changes:
                log(f"  {line}")
    write_resolved_recipe(recipe, registry, out, runtime)
    return changes


def read_run_yaml(path: Path):
    """A YAML file of a run folder, or a one-line error naming it."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise T2IError(
            f"{path}: cannot be read as YAML ({first}); the run folder is damaged"
        ) from None
