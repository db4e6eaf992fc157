"""Distances between feature distributions, as plain functions of numbers and arrays.

The Fréchet distance and the kernel (KID) distance are clean-fid's own functions; this module only
adds the Gaussian summaries, GR-GAN's CMD and ITDis on top of them, and the Inception Score from
class probabilities, so that every number can be recomputed from saved statistics.

GR-GAN defines (paper, shared/reference/grgan-paper.md), with r real images, f generated images
and l captions in one feature space and d the Fréchet distance:

- ``CMD = d(r, f) + |d(f, l) - d(r, l)|`` and ``ITDis = |d(f, l) - d(r, l)|`` (form ``"paper"``);
- the released ``eval/CMD/CMD_score.py`` prints ``d(r, f) + d(f, l) - d(r, l)`` (form ``"script"``,
  no absolute value; the matching ITDis is the signed ``d(f, l) - d(r, l)``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import T2IError

CmdForm = Literal["paper", "script"]
CMD_FORMS: dict[str, str] = {
    "paper": "CMD = d(r,f) + |d(f,l) - d(r,l)|, ITDis = |d(f,l) - d(r,l)| (GR-GAN paper)",
    "script": "CMD = d(r,f) + d(f,l) - d(r,l), ITDis = d(f,l) - d(r,l) (released CMD_score.py)",
}


@dataclass(frozen=True)
class GaussianStats:
    """A feature set summarised as a Gaussian: mean (D,) and covariance (D, D), float64."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int | None = None

    @classmethod
    def from_features(cls, feats: np.ndarray) -> GaussianStats:
        """Mean and (unbiased) covariance of (N, D) features, as clean-fid computes them."""
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise T2IError(f"Gaussian statistics need (N >= 2, D) features, got {feats.shape}")
        return cls(np.mean(feats, axis=0), np.cov(feats, rowvar=False), int(feats.shape[0]))

    @classmethod
    def load(cls, path: str | Path) -> GaussianStats:
        """Read an ``.npz`` with ``mu`` and ``sigma`` (the layout GR-GAN publishes)."""
        p = Path(path)
        if not p.is_file():
            raise T2IError(f"{p}: reference statistics not found (an .npz with 'mu' and 'sigma')")
        with np.load(p, allow_pickle=False) as data:
            missing = [k for k in ("mu", "sigma") if k not in data.files]
            if missing:
                raise T2IError(f"{p}: reference statistics lack {', '.join(missing)}")
            count = int(data["count"]) if "count" in data.files else None
            return cls(
                np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64), count
            )

    def save(self, path: str | Path) -> Path:
        """Write ``mu``/``sigma`` (and ``count``) as an ``.npz`` readable by ``load``."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        extra = {"count": np.int64(self.count)} if self.count is not None else {}
        np.savez(p, mu=self.mu, sigma=self.sigma, **extra)
        return p


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), clean-fid's implementation (with its ε fallback)."""
    from cleanfid.fid import frechet_distance as _fd

    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise T2IError(
            f"Fréchet distance between statistics of different sizes: {mu1.shape} vs {mu2.shape}"
        )
    # its ε-fallback notice goes to stdout, scipy's singular-matrix warning to warnings
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(_fd(mu1, s1, mu2, s2))


def stats_distance(a: GaussianStats, b: GaussianStats) -> float:
    """The Fréchet distance between two Gaussian summaries."""
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


def cmd(d_rf: float, d_fl: float, d_rl: float, form: CmdForm = "paper") -> float:
    """GR-GAN's cross-model distance from the three pairwise distances (see the module doc)."""
    return float(d_rf + itdis(d_fl, d_rl, form))


def itdis(d_fl: float, d_rl: float, form: CmdForm = "paper") -> float:
    """GR-GAN's image-text distance: |d(f,l) − d(r,l)| (paper) or d(f,l) − d(r,l) (script)."""
    if form not in CMD_FORMS:
        raise T2IError(f"unknown CMD form '{form}'; use one of {', '.join(CMD_FORMS)}")
    diff = float(d_fl - d_rl)
    return abs(diff) if form == "paper" else diff


def cmd_from_stats(
    real: GaussianStats, fake: GaussianStats, text: GaussianStats
) -> dict[str, float]:
    """The three distances and CMD / ITDis in both forms, from Gaussian summaries."""
    d_rf, d_fl, d_rl = (
        stats_distance(real, fake),
        stats_distance(fake, text),
        stats_distance(real, text),
    )
    out = {"d_real_fake": d_rf, "d_fake_text": d_fl, "d_real_text": d_rl}
    for form in CMD_FORMS:
        out[f"CMD_{form}"] = cmd(d_rf, d_fl, d_rl, form)  # type: ignore[arg-type]
        out[f"ITDis_{form}"] = itdis(d_fl, d_rl, form)  # type: ignore[arg-type]
    return out


def kernel_distance(
    feats1: np.ndarray,
    feats2: np.ndarray,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> float:
    """KID (unbiased MMD² with the cubic polynomial kernel): clean-fid's function, seeded.

    clean-fid draws its subsets from numpy's global generator; its state is set from ``seed``
    for the call and restored afterwards, so the number is reproducible.
    """
    from cleanfid.fid import kernel_distance as _kd

    f1, f2 = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    if min(len(f1), len(f2)) < 2:
        raise T2IError("KID needs at least two samples in each set")
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return float(_kd(f1, f2, num_subsets=num_subsets, max_subset_size=max_subset_size))
    finally:
        np.random.set_state(state)


def inception_score_from_probs(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) per split; returns (mean, std) over the splits."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise T2IError(f"Inception Score needs (N >= splits={splits}, classes) probabilities")
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = part * (np.log(part + 1e-12) - np.log(py + 1e-12))
        scores.append(float(np.exp(kl.sum(axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))
