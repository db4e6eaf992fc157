"""Adversarial and KL losses on hand-built critics whose answers are known."""

from __future__ import annotations

import math

import torch

from t2i_stages.plugins.losses.adversarial import (
    BCEMismatch,
    BCEMismatchParams,
    HingeMAGP,
    HingeMAGPParams,
)
from t2i_stages.plugins.losses.kl import CAKL, KLParams


class TableCritic:
    """Scores an image by its mean pixel; the conditional head adds cond . (mean pixel)."""

    def __init__(self, uncond=True, cond=True, scale=1.0):
        self.has_u, self.has_c, self.scale = uncond, cond, scale

    def features(self, images):
        return images.flatten(1).mean(1, keepdim=True) * self.scale

    def uncond(self, f):
        return f[:, 0] if self.has_u else None

    def cond(self, f, c):
        return (f * c).sum(1) if self.has_c and c is not None else None


def test_bce_with_a_perfect_critic_is_near_zero_for_d_and_large_for_g():
    real = torch.full((4, 3, 2, 2), 1.0)
    fake = torch.full((4, 3, 2, 2), -1.0)
    cond = torch.ones(4, 1)
    critic = TableCritic(scale=50.0)
    loss = BCEMismatch(BCEMismatchParams(mismatch=False))
    assert loss.d_loss(critic, real, fake, cond) < 1e-6
    assert loss.g_loss(critic, fake, cond) > 50


def test_bce_mismatched_pairs_add_a_term_on_real_images():
    real = torch.full((4, 3, 2, 2), 1.0)
    fake = torch.full((4, 3, 2, 2), -1.0)
    cond = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])  # neighbours disagree
    critic = TableCritic(uncond=False, scale=10.0)
    with_mis = BCEMismatch(BCEMismatchParams()).d_loss(critic, real, fake, cond)
    without = BCEMismatch(BCEMismatchParams(mismatch=False)).d_loss(critic, real, fake, cond)
    assert with_mis != without


def test_bce_forms_follow_the_reference_weights():
    zero = torch.zeros(2, 3, 2, 2)  # every logit 0 -> every BCE term is log 2
    cond = torch.zeros(2, 1)
    log2 = math.log(2)
    both = BCEMismatch(BCEMismatchParams()).d_loss(TableCritic(), zero, zero, cond)
    assert torch.isclose(both, torch.tensor(0.5 * 2 * log2 + 3 * log2 / 3))
    cond_only = BCEMismatch(BCEMismatchParams()).d_loss(TableCritic(uncond=False), zero, zero, cond)
    assert torch.isclose(cond_only, torch.tensor(log2 + log2))
    uncond_only = BCEMismatch(BCEMismatchParams()).d_loss(TableCritic(cond=False), zero, zero, None)
    assert torch.isclose(uncond_only, torch.tensor(log2))


def test_hinge_magp_penalty_is_zero_centred_and_optional():
    real = torch.randn(4, 3, 4, 4)
    fake = torch.randn(4, 3, 4, 4)
    cond = torch.randn(4, 1)
    critic = TableCritic(uncond=False, scale=10.0)
    plain = HingeMAGP(HingeMAGPParams(gp_weight=0.0)).d_loss(critic, real, fake, cond)
    with_gp = HingeMAGP(HingeMAGPParams()).d_loss(critic, real, fake, cond)
    assert with_gp > plain
    g = HingeMAGP(HingeMAGPParams()).g_loss(critic, fake, cond)
    assert torch.isclose(g, -critic.cond(critic.features(fake), cond).mean())


def test_hinge_penalty_gradient_reaches_the_critic():
    w = torch.tensor(0.5, requires_grad=True)

    class Learnable(TableCritic):
        def features(self, images):
            return images.flatten(1).mean(1, keepdim=True) * w

    loss = HingeMAGP(HingeMAGPParams()).d_loss(
        Learnable(uncond=False), torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2), torch.randn(3, 1)
    )
    loss.backward()
    assert w.grad is not None and w.grad != 0


def test_hinge_trains_a_trainable_condition_through_the_real_pairs_too():
    """A D's own text level (a learned embedding) is part of the critic: the real pairs' term and
    the penalty reach it, as the fake pairs' do."""
    v = torch.tensor([[0.3], [-0.2], [0.4]], requires_grad=True)
    real, fake = torch.full((3, 3, 2, 2), 2.0), torch.zeros(3, 3, 2, 2)
    for gp in (0.0, 2.0):
        v.grad = None
        loss = HingeMAGP(HingeMAGPParams(gp_weight=gp, mismatch="none")).d_loss(
            TableCritic(uncond=False), real, fake, v * 1.0
        )
        loss.backward()
        # fakes score 0 here, so every gradient the condition gets comes from the real pairs
        assert v.grad is not None and (v.grad != 0).all()


def test_kl_is_zero_for_the_prior_and_matches_the_closed_form():
    kl = CAKL(KLParams())
    assert kl(torch.zeros(3, 5), torch.zeros(3, 5)) == 0
    mu, logvar = torch.full((2, 4), 0.5), torch.full((2, 4), math.log(2.0))
    expected = -0.5 * (1 + math.log(2.0) - 0.25 - 2.0)
    assert torch.isclose(kl(mu, logvar), torch.tensor(expected))


class LinearCritic:
    """Scores an image by w . x (unconditional) and c * (w . x) (conditional): dD/dx = w."""

    def __init__(self, w: torch.Tensor, cond: bool = True):
        self.w, self.has_c = w, cond

    def features(self, images):
        return (images.flatten(1) * self.w.flatten()).sum(1, keepdim=True)

    def uncond(self, f):
        return f[:, 0]

    def cond(self, f, c):
        return (f * c).sum(1) if self.has_c and c is not None else None


def test_r1_adds_gamma_half_the_squared_gradient_norm_on_real_images():
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    cond = torch.full((5, 1), 2.0)
    critic = LinearCritic(w)
    plain = BCEMismatch(BCEMismatchParams()).d_loss(critic, real, fake, cond)
    with_r1 = BCEMismatch(BCEMismatchParams(r1_gamma=0.5)).d_loss(critic, real, fake, cond)
    # d(u + c)/dx = w + 2 w = 3 w for every real image
    expected = 0.5 / 2 * (3 * w).pow(2).sum()
    assert torch.isclose(with_r1 - plain, expected, rtol=1e-5)
    assert BCEMismatchParams().r1_gamma == 0  # the references' loss by default


def test_r1_pulls_the_critic_towards_a_flat_real_surface():
    """d/dw of gamma/2 ||w||^2 is gamma w: the penalty's whole effect on a linear critic."""
    torch.manual_seed(1)
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    grads = []
    for gamma in (0.0, 1.5):
        w = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
        loss = BCEMismatch(BCEMismatchParams(r1_gamma=gamma, mismatch=False)).d_loss(
            LinearCritic(w, cond=False), real, fake, None
        )
        loss.backward()
        grads.append((w.grad, w.detach()))
    (g0, w), (g1, _) = grads
    torch.testing.assert_close(g1 - g0, 1.5 * w)


def test_mode_seeking_is_the_inverse_ratio_of_image_to_noise_distance():
    from t2i_stages.plugins.losses.diversity import ModeSeeking, ModeSeekingParams

    loss = ModeSeeking(ModeSeekingParams(eps=1e-5))
    z_a, z_b = torch.zeros(4, 8), torch.full((4, 8), 2.0)  # mean |dz| = 2
    a = [torch.zeros(4, 3, 8, 8), torch.zeros(4, 3, 16, 16)]
    b = [torch.full((4, 3, 8, 8), 0.5), torch.full((4, 3, 16, 16), 0.25)]
    expected = (1 / (0.5 / 2 + 1e-5) + 1 / (0.25 / 2 + 1e-5)) / 2  # averaged over the stages
    assert math.isclose(float(loss(a, b, z_a, z_b)), expected, rel_tol=1e-6)
    assert float(loss(a, a, z_a, z_b)) == 1e5  # images that ignore the noise: the largest
    # its gradient pushes the two draws apart
    b_grad = [x.clone().requires_grad_(True) for x in b]
    loss(a, b_grad, z_a, z_b).backward()
    assert all((g.grad < 0).all() for g in b_grad)  # raising b (away from a) lowers the loss
