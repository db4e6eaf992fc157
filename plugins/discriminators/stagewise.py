"""Per-stage discriminators of AttnGAN, DM-GAN and GR-GAN (reference §1.1).

Trunk for resolution r: 4x4 stride-2 convs 3 -> df -> 2df -> 4df -> 8df with LeakyReLU(0.2)
(64 -> 4x4), then for r > 64 one downBlock per doubling (8df -> 16df -> 32df ...) and 3x3 blocks
halving back to 8df, so every D ends at (B, 8df, 4, 4).
Heads: unconditional = Conv(8df -> 1, k4, s4, bias); conditional = tile the condition vector
to 4x4, concatenate, Block3x3(8df + d -> 8df), the same kind of 4x4 conv; or, with
``cond_head_kind: projection``, the projection head (Miyato & Koyama 2018): with the features
summed over the 4x4 grid, ``phi``, the logit is ``w . phi + b + <V c, phi>`` (``w`` and ``V``
spectral-normed with ``projection_norm: spectral``, as in that paper). The text then
enters as an inner product rather than through a spectral-normed conv, which class-conditional
GANs found the stronger way to tie a label to the image; or, with ``cond_head_kind: words`` and
the ``words`` conditioning, the word-level head of ``word_head.py`` (one logit per real word).
With ``norm: spectral`` the convs use torch's spectral-norm parametrization; ``norm: none``
leaves them plain (with bias), for a D held by a gradient penalty instead (R1, MA-GP: StyleGAN2
and DF-GAN; an ablation option, none of the three references has it); ``spectral_norm:
reference`` swaps in the reference code's power iteration (``spectral.py``), same keys;
``batched_power_iteration`` advances the trunk's iterations together (``spectral.py``).
``extra_blocks: n`` adds n 3x3 blocks (conv, norm, LeakyReLU; the channels kept) after each of
the trunk's first halvings: a deeper D at the same widths, to see pixel-level texture (an
ablation option, no reference has it).
``minibatch_std: g`` appends the minibatch standard-deviation map over groups of g images to
the 4x4 features before the heads (``minibatch_std.py``; an ablation option, no reference has it).
``aux_projection`` adds a second level's projection term ``<V a, phi>`` to the conditional
logit, ``V`` zero-initialised: the reference head on the frozen features keeps the realism it
gives, and the D's own word embedding adds what the frozen features do not tell apart. Its
vector travels appended to the head's condition, so mismatched pairs roll both together.

API (see ``t2i_stages.plugin.DiscriminatorBase``)::

    f = D(images)                 # (B, 8df, 4, 4); (B, 8df + 1, 4, 4) with minibatch_std
    D.uncond_logits(f)            # (B,) raw logits, or None without an unconditional head
    c = D.condition(text)         # (B, d) from the D's conditioning level (sentence, mean_words);
                                  # the word head: (B, T, d + 1), the words and their mask
    D.cond_logits(f, c)           # (B,) raw logits, or None without a usable conditional head;
                                  # the word head: (K,), one per real word of the batch
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from t2i_stages.plugin import (
    DiscriminatorBase,
    PluginError,
    TextFeatures,
)
from t2i_stages.plugins.common.init import apply_init
from t2i_stages.plugins.common.layers import follow_memory_format

from .minibatch_std import MinibatchStd
from .params import StagewiseDiscriminatorParams
from .resolution import resolve_resolution
from .spectral import batch_power_iterations, use_reference_power_iteration
from .word_head import WordRegionHead, pack_words


def _norm_conv(norm: str, in_ch: int, out_ch: int, k: int, s: int, p: int) -> nn.Module:
    """The conv itself: spectral-normed, or plain; without a bias where BatchNorm follows."""
    conv = nn.Conv2d(in_ch, out_ch, k, s, p, bias=norm != "batch")
    return spectral_norm(conv) if norm == "spectral" else conv


def _conv(norm: str, in_ch: int, out_ch: int, k: int, s: int, p: int) -> list[nn.Module]:
    conv = _norm_conv(norm, in_ch, out_ch, k, s, p)
    return [conv, nn.BatchNorm2d(out_ch)] if norm == "batch" else [conv]


def down_block(norm: str, in_ch: int, out_ch: int) -> nn.Sequential:
    """4x4 stride-2 conv (+ BN) + LeakyReLU(0.2): halves the resolution."""
    return nn.Sequential(*_conv(norm, in_ch, out_ch, 4, 2, 1), nn.LeakyReLU(0.2))


def block3x3(norm: str, in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 conv (+ BN) + LeakyReLU(0.2)."""
    return nn.Sequential(*_conv(norm, in_ch, out_ch, 3, 1, 1), nn.LeakyReLU(0.2))


def build_trunk(
    norm: str, df: int, resolution: int, extra_blocks: int = 0
) -> tuple[nn.Sequential, int]:
    """The image encoder down to 4x4; returns it and its output channels. ``extra_blocks``
    3x3 blocks follow each of the first (up to four) halvings, keeping the channels."""
    steps = int(math.log2(resolution // 4))
    layers: list[nn.Module] = []
    ch = df
    layers += [_norm_conv(norm, 3, df, 4, 2, 1), nn.LeakyReLU(0.2)]  # no BatchNorm on the first
    layers += [block3x3(norm, ch, ch) for _ in range(extra_blocks)]
    for _ in range(min(steps, 4) - 1):
        layers.append(down_block(norm, ch, ch * 2))
        ch *= 2
        layers += [block3x3(norm, ch, ch) for _ in range(extra_blocks)]
    for _ in range(steps - 4):  # beyond 64 px: keep doubling
        layers.append(down_block(norm, ch, ch * 2))
        ch *= 2
    while steps > 4 and ch > df * 8:
        layers.append(block3x3(norm, ch, ch // 2))
        ch //= 2
    return nn.Sequential(*layers), ch


class StagewiseDiscriminator(DiscriminatorBase):
    """Trunk + optional heads; see the module docstring."""

    def __init__(
        self,
        resolution: int,
        df: int,
        text_dim: int,
        norm: str,
        uncond_head: bool,
        cond_head: bool,
        conditioning: nn.Module,
        cond_head_kind: str = "concat",
        projection_norm: str = "none",
        minibatch_std: int = 0,
        aux_conditioning: nn.Module | None = None,
        extra_blocks: int = 0,
    ):
        super().__init__()
        self.resolution = resolution
        self.trunk, ch = build_trunk(norm, df, resolution, extra_blocks)
        self.minibatch_std = MinibatchStd(minibatch_std) if minibatch_std else None
        ch += 1 if minibatch_std else 0
        self.feature_channels = ch
        self.conditioning = conditioning
        self.uncond_out = nn.Conv2d(ch, 1, 4, 4) if uncond_head else None
        self.cond_joint = None
        self.cond_out = None
        self.cond_embed = None
        self.word_head = None
        wanted = "sequence" if cond_head_kind == "words" else "vector"
        self._cond_used = cond_head and getattr(conditioning, "provides", "none") == wanted
        self.cond_dim = cond_dim = getattr(conditioning, "dim", 0) or text_dim
        if cond_head:
            if cond_head_kind == "words":
                self.word_head = WordRegionHead(ch, cond_dim)
            elif cond_head_kind == "projection":
                self.cond_out = nn.Linear(ch, 1)
                self.cond_embed = nn.Linear(cond_dim, ch, bias=False)
                if projection_norm == "spectral":
                    self.cond_out = spectral_norm(self.cond_out)
                    self.cond_embed = spectral_norm(self.cond_embed)
            else:
                self.cond_joint = block3x3(norm, ch + cond_dim, ch)
                self.cond_out = nn.Conv2d(ch, 1, 4, 4)
        self.aux_conditioning = aux_conditioning
        self.aux_embed = None
        if aux_conditioning is not None:
            aux_dim = getattr(aux_conditioning, "dim", 0) or text_dim
            self.aux_embed = nn.Linear(aux_dim, ch, bias=False)
            nn.init.zeros_(self.aux_embed.weight)

    @property
    def has_uncond(self) -> bool:
        return self.uncond_out is not None

    @property
    def has_cond(self) -> bool:
        return self._cond_used

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.trunk(images)
        return features if self.minibatch_std is None else self.minibatch_std(features)

    def condition(self, text: TextFeatures) -> torch.Tensor | None:
        """The sentence-level vector, or for the word head the packed words (``word_head``)."""
        if self.word_head is not None and self.has_cond:
            return pack_words(self.conditioning(text))
        main = super().condition(text)
        if self.aux_conditioning is None or main is None:
            return main
        aux = self.aux_conditioning(text).vector
        return torch.cat([main, aux.to(main.dtype)], dim=1)

    def uncond_logits(self, features: torch.Tensor) -> torch.Tensor | None:
        if self.uncond_out is None:
            return None
        return self.uncond_out(features).reshape(-1)

    def cond_logits(
        self, features: torch.Tensor, condition: torch.Tensor | None
    ) -> torch.Tensor | None:
        if not self._cond_used or condition is None:
            return None
        if self.word_head is not None:
            return self.word_head(features, condition)
        aux = None
        if self.aux_embed is not None:
            condition, aux = condition[:, : self.cond_dim], condition[:, self.cond_dim :]
        phi = features.sum(dim=(2, 3)) if self.cond_embed is not None or aux is not None else None
        if self.cond_embed is not None:  # projection head
            logits = self.cond_out(phi) + (self.cond_embed(condition) * phi).sum(1, keepdim=True)
        else:
            b, _, h, w = features.shape
            tiled = condition.reshape(b, -1, 1, 1).expand(-1, -1, h, w)
            tiled = follow_memory_format(tiled, features)
            logits = self.cond_out(self.cond_joint(torch.cat([features, tiled], dim=1)))
        logits = logits.reshape(-1)
        if aux is not None:
            logits = logits + (self.aux_embed(aux) * phi).sum(1)
        return logits


def _aux_conditioning(params: StagewiseDiscriminatorParams, registry: Any) -> nn.Module | None:
    if params.aux_projection is None:
        return None
    aux = registry.build("conditioning", params.aux_projection, text_dim=params.text_dim)
    if getattr(aux, "provides", None) != "vector" or getattr(aux, "eps_dim", 0):
        raise PluginError(
            f"discriminator 'stagewise': aux_projection '{params.aux_projection.type}' must give "
            "a vector without noise (token_embedding, sentence, mean_words)"
        )
    return aux


def build_stagewise_d(
    params: StagewiseDiscriminatorParams, registry: Any = None, **ctx: Any
) -> StagewiseDiscriminator:
    res = resolve_resolution("stagewise", params.resolution, ctx)
    cond = registry.build("conditioning", params.conditioning, text_dim=params.text_dim)
    if params.cond_head and params.cond_head_kind == "words":
        if getattr(cond, "provides", None) != "sequence":
            raise PluginError(
                f"discriminator 'stagewise': cond_head_kind 'words' reads a word sequence; "
                f"conditioning '{params.conditioning.type}' gives none (use words)"
            )
    elif getattr(cond, "provides", None) == "sequence":
        raise PluginError(
            f"discriminator 'stagewise': conditioning '{params.conditioning.type}' gives a word "
            "sequence; the conditional head needs a vector (sentence, mean_words, ca) or none"
        )
    if getattr(cond, "eps_dim", 0):
        raise PluginError(
            f"discriminator 'stagewise': conditioning '{params.conditioning.type}' needs noise; "
            "the reference feeds the raw text vector (sentence or mean_words) to D"
        )
    d = StagewiseDiscriminator(
        res,
        params.df,
        params.text_dim,
        params.norm,
        params.uncond_head,
        params.cond_head,
        cond,
        params.cond_head_kind,
        params.projection_norm,
        params.minibatch_std,
        _aux_conditioning(params, registry),
        params.extra_blocks,
    )
    if not (d.has_uncond or params.cond_head):
        raise PluginError("discriminator 'stagewise': both heads are disabled; enable one")
    d = apply_init(d, params.init)
    if d.aux_embed is not None:  # after the init: the aux term starts at zero under any init
        nn.init.zeros_(d.aux_embed.weight)
    if params.spectral_norm == "reference":
        use_reference_power_iteration(d)
    if params.batched_power_iteration:
        batch_power_iterations(d.trunk)
    return d
