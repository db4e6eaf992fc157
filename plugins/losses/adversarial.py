"""Adversarial losses: the references' BCE form with mismatched pairs, and DF-GAN's hinge + MA-GP.

A loss does not know how a discriminator is built. The engine hands it a ``Critic``: an object
with ``features(images)``, ``uncond(features)`` and ``cond(features, condition)``, the last two
returning raw logits (B,) or None when the discriminator has no such head. As in the references,
the mismatched pairs reuse the real images' features (one trunk pass per image set).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t2i_stages.plugin import Critic

from .params import BCEMismatchParams, HingeMAGPParams


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    # sigmoid + BCE as in the references, in the numerically stable fused form
    return F.binary_cross_entropy_with_logits(
        logits.float(), torch.full_like(logits.float(), target)
    )


class BCEMismatch:
    role = "adversarial"

    def __init__(self, params: BCEMismatchParams):
        self.params = params

    def d_loss(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, cond) -> torch.Tensor:
        gamma = self.params.r1_gamma
        if gamma > 0:
            real = real.detach().requires_grad_(True)
        f_real, f_fake = critic.features(real), critic.features(fake)
        u_real, c_real = critic.uncond(f_real), critic.cond(f_real, cond)
        loss = self._bce_terms(critic, f_real, u_real, c_real, f_fake, cond)
        if gamma > 0:  # R1 on the real images, through the heads that score them
            scores = sum(x.float().sum() for x in (u_real, c_real) if x is not None)
            (grad,) = torch.autograd.grad(scores, real, create_graph=True)
            loss = loss + gamma / 2 * grad.float().pow(2).flatten(1).sum(1).mean()
        return loss

    def _bce_terms(self, critic: Critic, f_real, u_real, c_real, f_fake, cond) -> torch.Tensor:
        u_fake, c_fake = critic.uncond(f_fake), critic.cond(f_fake, cond)
        c_mis = None
        if c_real is not None and self.params.mismatch and f_real.shape[0] > 1:
            c_mis = critic.cond(f_real[:-1], cond[1:])
        if u_real is not None and c_real is not None:
            fake_terms = [_bce(u_fake, 0.0), _bce(c_fake, 0.0)]
            if c_mis is not None:
                fake_terms.append(_bce(c_mis, 0.0))
            return 0.5 * (_bce(u_real, 1.0) + _bce(c_real, 1.0)) + sum(fake_terms) / len(fake_terms)
        if c_real is not None:
            fake_terms = [_bce(c_fake, 0.0)] + ([_bce(c_mis, 0.0)] if c_mis is not None else [])
            return _bce(c_real, 1.0) + sum(fake_terms) / len(fake_terms)
        if u_real is not None:
            return 0.5 * (_bce(u_real, 1.0) + _bce(u_fake, 0.0))
        raise ValueError("the discriminator has neither an unconditional nor a conditional head")

    def g_loss(self, critic: Critic, fake: torch.Tensor, cond) -> torch.Tensor:
        f = critic.features(fake)
        return sum(_bce(x, 1.0) for x in (critic.uncond(f), critic.cond(f, cond)) if x is not None)


class HingeMAGP:
    role = "adversarial"

    def __init__(self, params: HingeMAGPParams):
        self.params = params

    @staticmethod
    def _score(critic: Critic, features: torch.Tensor, cond) -> torch.Tensor:
        c = critic.cond(features, cond)
        return (c if c is not None else critic.uncond(features)).float()

    def d_loss(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, cond) -> torch.Tensor:
        p = self.params
        real = real.detach().requires_grad_(p.gp_weight > 0)
        cond_gp = cond
        if cond is not None and not cond.requires_grad:
            # a frozen condition (DF-GAN's sentence) becomes a leaf the penalty differentiates;
            # a trainable one (a D's own text level) keeps its graph, so the real pairs train it
            cond_gp = cond.detach().requires_grad_(p.gp_weight > 0)
        f_real = critic.features(real)
        s_real = self._score(critic, f_real, cond_gp)
        loss = F.relu(1.0 - s_real).mean()
        fake_terms = [F.relu(1.0 + self._score(critic, critic.features(fake), cond)).mean()]
        if p.mismatch == "roll" and cond is not None and real.shape[0] > 1:
            # DF-GAN pairs image k+1 with condition k by rolling the real features
            rolled = torch.cat([f_real[1:], f_real[:1]])
            fake_terms.append(F.relu(1.0 + self._score(critic, rolled, cond)).mean())
        loss = loss + sum(fake_terms) / len(fake_terms)
        if p.gp_weight > 0:
            inputs = [real] + ([cond_gp] if cond_gp is not None else [])
            grads = torch.autograd.grad(s_real.sum(), inputs, create_graph=True)
            flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)
            loss = loss + p.gp_weight * flat.norm(2, dim=1).pow(p.gp_power).mean()
        return loss

    def g_loss(self, critic: Critic, fake: torch.Tensor, cond) -> torch.Tensor:
        return -self._score(critic, critic.features(fake), cond).mean()


def build_bce_mismatch(params: BCEMismatchParams, **ctx) -> BCEMismatch:
    return BCEMismatch(params)


def build_hinge_magp(params: HingeMAGPParams, **ctx) -> HingeMAGP:
    return HingeMAGP(params)
