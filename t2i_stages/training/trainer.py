"""``Trainer``: a recipe's GAN in its run folder, with the state a checkpoint keeps.

It assembles the recipe (``t2i_stages.build.assemble``), puts the models on the device with
their optimizers, and hands one iteration to ``GanStep`` (``step.py``) and the loop to
``loop.fit``. Runs the same on one CPU process or under torchrun.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..build import assemble
from ..checkpoint import check_checkpoint_dir, estimate_checkpoint_bytes
from ..errors import T2IError
from ..recipe import Recipe
from ..registry import Registry
from ..seeding import seed_everything
from ..signals import StopRequests
from . import state
from .augment import DiffAugment
from .budget import StopReason
from .data import ResumableSampler
from .ema import EMA
from .finite import FiniteGuard
from .loop import Callback, fit
from .optimizers import discriminator_optimizers, is_fused, make_optimizer
from .runtime import Runtime, unwrap
from .schedule import lr_factor, run_progress, set_lr
from .step import GanStep
from .text_cache import TextCache


def _workers_ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the main process.

    A scheduler's SIGTERM (or Ctrl-C) reaches the whole process group; a worker it killed would
    make the main process raise mid-step instead of finishing the step and checkpointing. The
    main process shuts its workers down itself at the end of ``fit``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


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
        self.recipe, self.registry, self.out = recipe, registry, Path(out_dir)
        self.runtime = rt = runtime or Runtime.create(precision=recipe.train.precision)
        self.log = log if rt.is_main else (lambda *a, **k: None)
        self.cfg = cfg = recipe.train
        if rt.thread_choice is None:
            rt.set_threads(cfg.threads)
        seed_everything(recipe.seed + rt.rank)
        self.step = self.epoch = self.batch_in_epoch = 0
        # the training loop's wall-clock seconds before this fit (a resume's checkpoint): a
        # time-bound run's max_minutes and its lr schedule count them
        self.train_seconds = 0.0
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.stops = StopRequests()  # SIGINT/SIGTERM while fit runs
        self.stop: StopReason | None = None  # why fit() ended, once it has
        self.resume_command: str | None = None  # the exact command to print after a signal
        self.assembly = assemble(recipe, registry, device=rt.device, runtime=rt, log=self.log)
        a, dev = self.assembly, rt.device
        fmt = torch.channels_last if cfg.channels_last else torch.preserve_format
        self.G = a.generator.to(dev, memory_format=fmt)
        self.Ds = [d.to(dev, memory_format=fmt) for d in a.discriminators]
        if cfg.channels_last and a.matcher is not None:  # its image tower scores G's images
            a.matcher.to(memory_format=fmt)
        if cfg.init_from is not None:  # before the EMA copies G
            state.init_from(self, Path(cfg.init_from))
        if rt.distributed and any(x.role == "diversity" for x in a.losses):
            names = ", ".join(f"'{x.slot.type}'" for x in a.losses if x.role == "diversity")
            raise T2IError(
                f"losses: {names} runs the generator twice per step, which its DDP wrapper "
                "does not allow (each parameter's gradient is reduced once); train it on one "
                "process"
            )
        self.G_train = self._compiled(rt.wrap(self.G))
        self.Ds_train = [self._compiled(rt.wrap(d)) for d in self.Ds]
        fused = cfg.fused_optimizer
        self.opt_g = make_optimizer(cfg.optim_g, self.G.parameters(), fused)
        self.opt_ds = discriminator_optimizers(
            cfg.optim_d, self.Ds, fused, merge=cfg.merge_d_optimizers
        )
        if cfg.finite_check == "deferred" and not all(map(is_fused, [self.opt_g, *self.opt_ds])):
            raise T2IError(
                "train.finite_check: 'deferred' drops bad updates inside torch's fused Adam/AdamW; "
                f"optim_g is {cfg.optim_g.type!r}, optim_d {cfg.optim_d.type!r}, "
                f"fused_optimizer {fused} on {dev.type} (use adam/adamw with fused_optimizer true, "
                "or finite_check 'step')"
            )
        self.guard = FiniteGuard(
            cfg.finite_check, cfg.skip_nonfinite, dev, rt.any_rank, rt.distributed,
            self.out / "checkpoints", self.log,
        )  # fmt: skip
        self.ema = EMA(self.G, cfg.ema_decay, cfg.ema_warmup) if cfg.ema_decay is not None else None
        self.noise = torch.Generator(device=dev.type).manual_seed(recipe.seed * 7919 + rt.rank)
        self.sampler = ResumableSampler(len(a.train_data), recipe.seed, rt.rank, rt.world_size)
        self.local_batch = recipe.data.batch_size // rt.world_size
        if self.local_batch < 2:
            raise T2IError(
                f"data.batch_size {recipe.data.batch_size} over {rt.world_size} ranks leaves "
                "fewer than 2 samples per rank (mismatched pairs need 2)"
            )
        if len(self.sampler) // self.local_batch < cfg.grad_accum:
            raise T2IError("data: the train split is smaller than one (accumulated) batch")
        self.gan = GanStep(
            self.G, self.G_train, self.Ds, self.Ds_train, self.opt_g, self.opt_ds, a.losses,
            a.text_encoder, a.matcher, rt, self.guard, self.noise, self.ema,
            DiffAugment(recipe.train.augment.policy, self.noise,
                        recipe.train.augment.translation, recipe.train.augment.cutout),
            recipe.train.augment.matcher,
        )  # fmt: skip
        if cfg.text_cache:
            self.gan.text_cache = TextCache(
                a.text_encoder, self.gan.encode_text, int(cfg.text_cache_max_mb * 2**20), dev,
                self.log,
            )  # fmt: skip
        self.fixed = self.fixed_captions()

    # ------------------------------------------------------------------ data

    def batches(self) -> Iterator[dict]:
        """Endless training batches, advancing epochs; the position is kept for checkpoints."""
        while True:
            for batch in self._loader():
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    def _loader(self) -> DataLoader:
        ds, workers = self.assembly.train_data, self.recipe.data.num_workers
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, self.batch_in_epoch * self.local_batch)
        return DataLoader(
            ds,
            batch_size=self.local_batch,
            sampler=self.sampler,
            drop_last=True,
            num_workers=workers,
            collate_fn=getattr(ds, "collate", None),
            pin_memory=self.runtime.device.type == "cuda",
            persistent_workers=False,
            worker_init_fn=_workers_ignore_stop_signals if workers else None,
        )

    def to_device(self, batch: dict) -> dict:
        dev = self.runtime.device
        fmt = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        out = dict(batch)
        out["images"] = [x.to(dev, non_blocking=True, memory_format=fmt) for x in batch["images"]]
        for k in ("tokens", "mask", "class_id"):
            if k in batch and torch.is_tensor(batch[k]):
                out[k] = batch[k].to(dev, non_blocking=True)
        if self.gan.text_cache is not None and dev.type != "cpu":  # its keys, without a sync
            out["host_tokens"], out["host_mask"] = batch["tokens"], batch["mask"]
        return out

    def fixed_captions(self, n: int = 16) -> dict:
        """A fixed set of test captions (and noise) for sample grids through training."""
        ds = self.assembly.test_data
        items = [ds[i] for i in range(min(n, len(ds)))]
        collate = getattr(ds, "collate", None) or torch.utils.data.default_collate
        g = torch.Generator().manual_seed(12345)
        z = torch.randn(len(items), self.G.z_dim, generator=g)
        eps = torch.randn(len(items), max(self.G.eps_dim, 1), generator=g)[:, : self.G.eps_dim]
        return {"batch": collate(items), "z": z, "eps": eps}

    def _compiled(self, module: torch.nn.Module) -> torch.nn.Module:
        return torch.compile(module) if self.cfg.compile else module

    # ------------------------------------------------------------------ training

    def schedule_lr(self, elapsed_s: float = 0.0) -> float:
        """Set G's and the Ds' learning rates for the next step (``train.lr_schedule``) from the
        run's progress; returns the factor on the recipe's rates."""
        cfg = self.cfg
        if cfg.lr_schedule.kind == "constant":  # the optimizers keep the recipe's rates
            return 1.0
        progress = run_progress(self.step, cfg.max_steps, elapsed_s, cfg.max_minutes)
        factor = lr_factor(cfg.lr_schedule, progress)
        bases = [(self.opt_g, cfg.optim_g.lr), *((o, cfg.optim_d.lr) for o in self.opt_ds)]
        set_lr(bases, factor)
        return factor

    def train_step(self, batches: list[dict]) -> dict[str, torch.Tensor]:
        """One iteration over ``grad_accum`` device batches (``to_device(next(batches()))``)."""
        for module in (self.G_train, *self.Ds_train):
            module.train()
        return self.gan(batches, self.step)

    def fit(self, callbacks: Sequence[Callback] = (), eval_every: int | None = None) -> dict:
        """Train until ``max_steps`` (or the time budget, a signal or a callback); returns a
        summary. Rank 0 writes the run folder (``RunOutputs``) before ``callbacks`` run."""
        from .outputs import RunOutputs

        writers: list[Callback] = []
        if self.runtime.is_main:
            self.check_output_space()
            writers.append(RunOutputs(self))
        summary = fit(self, [*writers, *callbacks], eval_every)
        cache = self.gan.text_cache
        if cache is not None:
            st = cache.stats()
            rate = f"{100 * st['hit_rate']:.0f}%" if st["hit_rate"] is not None else "n/a"
            self.log(
                f"train.text_cache: {st['captions']} captions kept ({st['bytes'] / 2**20:.1f} MiB), "
                f"{rate} of the training captions served from it"
                + (f"; off: {st['disabled_because']}" if st["disabled_because"] else "")
            )
        return summary

    @property
    def skipped_nonfinite(self) -> int:
        return self.guard.skipped

    def check_deferred(self) -> None:
        """Read the deferred non-finite tally now (``train.finite_check: deferred``)."""
        self.guard.read(self.step)

    def check_output_space(self) -> int:
        """Fail before training if the checkpoint folder is not writable or too small; returns
        the estimated bytes of one checkpoint (tensors and the Adam moments)."""
        trainable = sum(
            p.numel() for m in (self.G, *self.Ds) for p in m.parameters() if p.requires_grad
        )
        needed = estimate_checkpoint_bytes(state.component_states(self), trainable)
        check_checkpoint_dir(self.out / "checkpoints", needed)
        return needed

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0); returns its folder."""
        return state.save(self) if self.runtime.is_main else None

    def resume(self) -> bool:
        """Continue from the newest checkpoint that verifies; False when there is none."""
        return state.resume(self)

    # ------------------------------------------------------------------ generation

    @property
    def sampler_generator(self) -> torch.nn.Module:
        return self.ema.model if self.ema is not None else unwrap(self.G)

    @torch.no_grad()
    def generate(self, batch: dict, z: torch.Tensor, eps: torch.Tensor | None):
        batch = self.to_device(batch)
        G = self.sampler_generator
        was = G.training
        G.eval()
        try:
            text = self.gan.text(batch)
            dev = self.runtime.device
            eps_d = eps.to(dev) if eps is not None and eps.numel() else None
            return G(z.to(dev), eps_d, text)
        finally:
            G.train(was)
