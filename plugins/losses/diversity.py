"""The mode-seeking diversity term (MSGAN, Mao et al. 2019): the ``diversity`` role.

Why: a conditional generator may ignore its noise and answer every caption with one image per
caption, and then every attribute the caption leaves open gets a single favourite value (on
the shapes demo: the dot where no detail is named, 43% against the data's 25%). The ratio of
the images' distance to the noises' distance rewards images that move with the noise.
"""

from __future__ import annotations

import torch

from .params import ModeSeekingParams


class ModeSeeking:
    role = "diversity"

    def __init__(self, params: ModeSeekingParams):
        self.params = params
        self.pairs = params.pairs  # the step draws this many captions twice (None: all)

    def __call__(
        self,
        images_a: list[torch.Tensor],
        images_b: list[torch.Tensor],
        z_a: torch.Tensor,
        z_b: torch.Tensor,
    ) -> torch.Tensor:
        dz = (z_a.float() - z_b.float()).abs().mean()
        terms = [
            1.0 / ((a.float() - b.float()).abs().mean() / dz + self.params.eps)
            for a, b in zip(images_a, images_b, strict=True)
        ]
        return torch.stack(terms).mean()


def build_mode_seeking(params: ModeSeekingParams, **ctx) -> ModeSeeking:
    return ModeSeeking(params)
