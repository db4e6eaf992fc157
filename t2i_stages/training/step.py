"""One training iteration, as the papers describe it: every discriminator's update, then the
generator's, each over ``train.grad_accum`` micro-batches.

Discriminator ``i`` judges stage ``i``. A loss slot's ``stages`` limits where it applies. Every
loss term is collected under its full name, so a NaN names its term (``finite.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..build import BuiltLoss
from ..contracts import AdversarialLoss
from ..errors import T2IError
from ..types import GeneratorOutput, TextFeatures
from .finite import FiniteGuard, Modules
from .runtime import Runtime


class DiscriminatorCritic:
    """The one adapter from a discriminator plugin to the ``Critic`` an adversarial loss uses.

    The trunk runs through ``call`` (the DDP/compiled wrapper while training D, the plain module
    for G's update, where D is frozen); the heads are the plugin's own methods.
    """

    def __init__(self, call: torch.nn.Module, module: torch.nn.Module, augment: Any = None):
        self.call, self.module, self.augment = call, module, augment

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if self.augment:
            images = self.augment(images)
        return self.call(images)

    def uncond(self, features: torch.Tensor) -> torch.Tensor | None:
        return self.module.uncond_logits(features)

    def cond(self, features: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor | None:
        if condition is None:
            return None
        return self.module.cond_logits(features, condition)


Logs = dict[str, torch.Tensor]


def _add(into: dict, key: str, value: torch.Tensor, k: int) -> None:
    into[key] = into.get(key, 0) + value.detach() / k


@dataclass
class GanStep:
    """The models, optimizers and losses of one run, and ``__call__`` = one iteration."""

    G: torch.nn.Module
    G_train: torch.nn.Module  # G as wrapped for training (DDP, torch.compile)
    Ds: list[torch.nn.Module]
    Ds_train: list[torch.nn.Module]
    opt_g: torch.optim.Optimizer
    opt_ds: list[torch.optim.Optimizer]
    losses: list[BuiltLoss]
    text_encoder: Any  # frozen: encode_text(tokens, mask) -> TextFeatures
    matcher: Any | None  # frozen: encode_image(images) -> ImageFeatures
    rt: Runtime
    guard: FiniteGuard
    noise: torch.Generator
    ema: Any | None = None
    augment: Any = None  # DiffAugment of every D input (falsy: none)
    augment_matcher: bool = False  # and of the images the matching losses score
    text_cache: Any = None  # TextCache (train.text_cache): each caption encoded once

    def __call__(self, batches: list[dict], step: int) -> Logs:
        k = len(batches)
        logs: Logs = {}
        texts = [self.train_text(b) for b in batches]
        fakes, d_terms = self.discriminators_backward(batches, texts, logs)
        dropped = self.guard.guard(
            d_terms, self._named_ds(), self.opt_ds, [*self.opt_ds, self.opt_g], logs, step
        )
        if dropped is not None:
            return dropped
        for opt in self.opt_ds:
            opt.step()
        self.opt_g.zero_grad(set_to_none=True)
        g_terms: dict[str, torch.Tensor] = {}
        for d in self.Ds:
            d.requires_grad_(False)
        try:
            for batch, text, (z, eps, out) in zip(batches, texts, fakes, strict=True):
                if k > 1:  # the D pass ran G without a graph
                    with self.rt.autocast():
                        out = self.G_train(z, eps, text)
                total, parts = self.generator_loss(batch, text, out, g_terms, k, z, eps)
                (total / k).backward()
                for name, v in parts.items():
                    _add(logs, name, v, k)
                _add(logs, "G_total", total, k)
        finally:
            for d in self.Ds:
                d.requires_grad_(True)
        modules: Modules = [("generator", self.G)]
        dropped = self.guard.guard(g_terms, modules, [self.opt_g], [self.opt_g], logs, step)
        if dropped is not None:
            return dropped
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.G, step)
        return logs

    def discriminators_backward(
        self, batches: list[dict], texts: list[TextFeatures], logs: Logs
    ) -> tuple[list[tuple[Any, Any, GeneratorOutput]], dict[str, torch.Tensor]]:
        """Generate each micro-batch and accumulate every D's gradient; returns the fakes (for
        G's update) and the named D loss terms."""
        k = len(batches)
        adversarial = [x for x in self.losses if x.role == "adversarial"]
        terms: dict[str, torch.Tensor] = {}
        fakes = []
        for opt in self.opt_ds:
            opt.zero_grad(set_to_none=True)
        for batch, text in zip(batches, texts, strict=True):
            z, eps = self.sample_noise(batch["tokens"].shape[0])
            with self.rt.autocast(), torch.set_grad_enabled(k == 1):
                out = self.G_train(z, eps, text)
            fakes.append((z, eps, out))
            for i, (D, Dt) in enumerate(zip(self.Ds, self.Ds_train, strict=True)):
                critic, cond = DiscriminatorCritic(Dt, D, self.augment), D.condition(text)
                parts = []
                with self.rt.autocast():
                    for x in adversarial:
                        if x.slot.stages is None or i in x.slot.stages:
                            loss: AdversarialLoss = x.loss
                            v = loss.d_loss(
                                critic, batch["images"][i], out.images[i].detach(), cond
                            )
                            parts.append(x.slot.weight * v)
                            _add(terms, f"discriminator {i} (stage {i}) loss '{x.slot.type}'", v, k)
                    total = sum(parts)
                (total / k).backward()
                _add(logs, f"D{i}", total, k)
        return fakes, terms

    def generator_loss(
        self,
        batch: dict,
        text: TextFeatures,
        out: GeneratorOutput,
        terms: dict,
        k: int = 1,
        z: torch.Tensor | None = None,
        eps: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Logs]:
        """G's total loss and its logged parts; ``terms`` collects each term under a full name.
        ``z``/``eps`` are the noise of ``out``, which a diversity loss draws against."""
        parts: Logs = {}
        total = torch.zeros((), device=self.rt.device)
        n_stages = len(out.images)
        image_feats: dict[int, Any] = {}
        for x in self.losses:
            stages = x.slot.stages if x.slot.stages is not None else list(range(n_stages))
            name, weight = x.slot.type, x.slot.weight
            if x.role == "adversarial":
                for i, D in enumerate(self.Ds):
                    if i not in stages:
                        continue
                    with self.rt.autocast():
                        v = x.loss.g_loss(
                            DiscriminatorCritic(D, D, self.augment),
                            out.images[i],
                            D.condition(text),
                        )
                    parts[f"G{i}_adv"] = parts.get(f"G{i}_adv", 0) + v
                    _add(
                        terms,
                        f"generator loss '{name}' against discriminator {i} (stage {i})",
                        v,
                        k,
                    )
                    total = total + weight * v
            elif x.role == "diversity":
                # the same captions (and CA noise) from a second z: only z differs
                if z is None:
                    raise T2IError(f"loss '{name}': a diversity loss needs the noise of G's images")
                m = min(getattr(x.loss, "pairs", None) or len(z), len(z))
                z_b, _ = self.sample_noise(m)
                head = type(text)(*(t[:m] if torch.is_tensor(t) else t for t in text))
                with self.rt.autocast():
                    out_b = self.G_train(z_b, None if eps is None else eps[:m], head)
                v = x.loss(
                    [out.images[s][:m] for s in stages],
                    [out_b.images[s] for s in stages],
                    z[:m],
                    z_b,
                )
                parts[name] = v
                _add(terms, f"generator loss '{name}' (two noise draws)", v, k)
                total = total + weight * v
            elif x.role == "kl":
                if out.mu is not None:
                    v = x.loss(out.mu, out.logvar)
                    parts["KL"] = v
                    _add(terms, f"generator loss '{name}' (conditioning augmentation KL)", v, k)
                    total = total + weight * v
            else:  # matching: generated images against their captions, in the matcher's space
                for s in stages:
                    if s not in image_feats:  # one matcher pass per stage, shared by its losses
                        images = out.images[s]
                        if self.augment and self.augment_matcher:
                            images = self.augment(images)
                        with self.rt.autocast():
                            feats = self.matcher.encode_image(images)
                        image_feats[s] = type(feats)(*(f.float() for f in feats))  # fp32 losses
                    v = x.loss(image_feats[s], text, batch.get("class_id"))
                    parts[f"{name}@{s}"] = v
                    _add(terms, f"generator loss '{name}' at stage {s}", v, k)
                    total = total + weight * v
        return total, parts

    def text(self, batch: dict) -> TextFeatures:
        """The frozen encoder's features of a batch's captions, detached, with their token ids
        (a conditioning level with learned word vectors reads them)."""
        return self.encode_text(batch["tokens"], batch["mask"])._replace(tokens=batch["tokens"])

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        with torch.no_grad():
            text = self.text_encoder.encode_text(tokens, mask)
        return type(text)(*(t.detach() if torch.is_tensor(t) else t for t in text))

    def train_text(self, batch: dict) -> TextFeatures:
        """A training batch's text features: from ``text_cache`` when there is one (the same
        bits as ``text``; the batch's ``host_tokens``/``host_mask`` spare a device sync)."""
        if self.text_cache is None:
            return self.text(batch)
        text = self.text_cache.features(
            batch["tokens"], batch["mask"], batch.get("host_tokens"), batch.get("host_mask")
        )
        return text._replace(tokens=batch["tokens"])

    def sample_noise(self, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        dev = self.rt.device
        z = torch.randn(b, self.G.z_dim, generator=self.noise, device=dev)
        eps = None
        if self.G.eps_dim:
            eps = torch.randn(b, self.G.eps_dim, generator=self.noise, device=dev)
        return z, eps

    def _named_ds(self) -> Modules:
        return [(f"discriminator {i} (stage {i})", d) for i, d in enumerate(self.Ds)]
