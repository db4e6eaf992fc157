"""DiffAugment of the discriminators' inputs: what each transform does, that gradients pass,
that an empty policy draws nothing, and that a run with it resumes bit for bit."""

from __future__ import annotations

import pytest
import torch

from t2i_stages.training import train
from t2i_stages.training.augment import DiffAugment


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_an_empty_policy_is_the_identity_and_draws_nothing():
    g = _gen()
    before = g.get_state()
    aug = DiffAugment([], g)
    x = torch.randn(4, 3, 8, 8)
    assert not aug
    assert torch.equal(aug(x) if aug else x, x)
    assert torch.equal(g.get_state(), before)


def test_translation_moves_each_image_by_at_most_its_bound():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    y = DiffAugment(["translation"], _gen(), translation=0.125)(x)
    assert torch.equal(y.sum((1, 2, 3)), torch.ones(64))  # nothing leaves: the shift is <= 2 px
    where = y[:, 0].flatten(1).argmax(1)
    rows, cols = where // 16, where % 16
    assert (rows - 8).abs().max() <= 2 and (cols - 8).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 10  # per-sample draws


def test_cutout_zeroes_one_square_of_the_given_side():
    x = torch.ones(32, 3, 16, 16)
    y = DiffAugment(["cutout"], _gen(), cutout=0.5)(x)
    zeros = (y[:, 0] == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() >= 16  # 8x8, clipped at the border
    assert torch.equal(y[:, 0], y[:, 1])  # the same square in every channel


def test_color_keeps_shape_and_is_drawn_per_sample():
    x = torch.rand(8, 3, 4, 4) * 2 - 1
    y = DiffAugment(["color"], _gen())(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    assert len({round(float(v), 4) for v in (y - x).mean((1, 2, 3))}) == 8


def test_gradients_flow_through_every_transform():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    DiffAugment(["color", "translation", "cutout"], _gen())(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_same_generator_state_gives_the_same_augmentation():
    x = torch.randn(4, 3, 8, 8)
    policy = ["color", "translation", "cutout"]
    assert torch.equal(DiffAugment(policy, _gen(3))(x), DiffAugment(policy, _gen(3))(x))


def test_an_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="unknown augmentation"):
        DiffAugment(["flip"], _gen())


AUGMENTED = ("train.augment.policy=[color,translation,cutout]",)


def test_a_run_with_augmentation_trains_otherwise_and_resumes_bit_for_bit(
    micro, registry, tmp_path
):
    quiet = dict(log=lambda *a, **k: None, evaluate=False)
    ov = ("train.ckpt_every=2", *AUGMENTED)
    plain = train(
        micro("train.ckpt_every=2", "train.max_steps=3"), registry, tmp_path / "p", **quiet
    )
    full = train(micro(*ov, "train.max_steps=3"), registry, tmp_path / "full", **quiet)
    train(micro(*ov, "train.max_steps=2"), registry, tmp_path / "cut", **quiet)
    resumed = train(
        micro(*ov, "train.max_steps=3"), registry, tmp_path / "cut", resume=True, **quiet
    )
    w = lambda r: {n: p.detach() for n, p in r["trainer"].G.named_parameters()}  # noqa: E731
    a, b, c = w(full), w(resumed), w(plain)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)  # the Ds saw other images


def test_the_matcher_sees_augmented_images_only_when_asked(micro, registry, tmp_path):
    """Same policy, same draws for the Ds: with augment.matcher the matching losses score
    augmented images too, so G's update (and only its matching part) changes."""
    from t2i_stages.training import Trainer, prepare_run_folder
    from t2i_stages.training.runtime import Runtime

    logs = {}
    for flag in ("false", "true"):
        recipe = micro(*AUGMENTED, f"train.augment.matcher={flag}")
        prepare_run_folder(recipe, registry, tmp_path / flag, resume=False)
        t = Trainer(
            recipe, registry, tmp_path / flag, Runtime.create("cpu"), log=lambda *a, **k: None
        )
        out = t.train_step([t.to_device(next(t.batches()))])
        logs[flag] = {k: float(v) for k, v in out.items()}
    d_terms = [k for k in logs["false"] if k.startswith("D")]
    assert d_terms and all(logs["false"][k] == logs["true"][k] for k in d_terms)
    matching = [k for k in logs["false"] if "matching" in k]
    assert matching and any(logs["false"][k] != logs["true"][k] for k in matching)
