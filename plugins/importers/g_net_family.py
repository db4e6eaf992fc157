"""Whose G_NET: DM-GAN's (MinfengZhu/DM-GAN) or its fork GR-GAN's (BoO-18/GR-GAN).

GR-GAN's G_NET has exactly DM-GAN's keys and shapes (``grgan_format``), so a generator file
alone cannot say which paper released it; the files that come with it can. This module finds
the G_NET and D_NETs among the files (wherever a file holds them) and is the one place that
weighs the evidence, for both importers' ``identify``:

- DM-GAN: the text size 256 (the DAMSM's, in every DM-GAN config), a D_NET128/D_NET256 with
  UNCOND_DNET (DM-GAN builds every D with ``b_jcu=True``), a DAMSM encoder file
  (``text_encoder*.pth``, ``image_encoder*.pth``: the text side DM-GAN takes, as AttnGAN
  does), a text-side run whose text side is a DAMSM (``damsm``, ``damsm_rnn``: what
  ``import dmgan`` accepts in place of the files);
- GR-GAN: the text size 512 (the ITM's, hard-coded), a D_NET128/D_NET256 without UNCOND_DNET,
  the ``checkpoint_%04d.pth`` layout (``netG`` with a ``netD`` list), its ITM file
  (``ITM_model*.pth``), an ``itm`` text-side run.

A family claims the files when there is evidence for it (so with evidence both ways both claim
and ``import auto`` refuses, naming both), declines when there is evidence for the other only,
and claims them "from G_NET alone" when there is none, so that a bare G_NET is refused by
``import auto`` with both names instead of guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import yaml

from t2i_stages.plugin import ReleaseFile, T2IError

from .damsm import is_image_encoder, is_text_encoder
from .grgan_format import (
    DAMSM_DIM,
    ITM_DIM,
    NETD_ANCHORS,
    NETG_ANCHORS,
    discriminator_config,
    generator_config,
)
from .itm_format import find_itm
from .layout import Part, find_part
from .text_side import DAMSM_TEXT, run_recipes

Family = Literal["dmgan", "grgan"]
NAMES: dict[Family, str] = {"dmgan": "DM-GAN", "grgan": "GR-GAN"}


def generators(files: list[ReleaseFile]) -> list[Part]:
    """Every G_NET (the memory stages' keys) among ``files``, under any prefix."""
    return [p for f in files if (p := find_part(f.tensors, NETG_ANCHORS, str(f.path))) is not None]


def discriminators(files: list[ReleaseFile]) -> list[Part]:
    """Plain ``netD%d.pth`` files, and the ``netD`` list of a GR-GAN checkpoint (a list, which
    the flattened tensors of a file do not reach)."""
    out = []
    for f in files:
        listed = f.content.get("netD") if isinstance(f.content, dict) else None
        if isinstance(listed, (list, tuple)):
            for i, sd in enumerate(listed):
                if isinstance(sd, dict):
                    part = find_part(sd, NETD_ANCHORS, f"{f.path} (netD[{i}])")
                    if part is not None:
                        out.append(part)
        elif (part := find_part(f.tensors, NETD_ANCHORS, str(f.path))) is not None:
            out.append(part)
    return out


def is_checkpoint(f: ReleaseFile) -> bool:
    """GR-GAN's ``checkpoint_%04d.pth``: ``netG`` beside a ``netD`` list."""
    c = f.content
    return isinstance(c, dict) and "netG" in c and isinstance(c.get("netD"), (list, tuple))


def text_kind(f: ReleaseFile) -> str | None:
    """The text side a run's ``recipe.resolved.yaml`` names (its text encoder, else matcher)."""
    try:
        data = yaml.safe_load(f.path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    slot = data.get("text_encoder") or data.get("matcher")
    return slot.get("type") if isinstance(slot, dict) else None


@dataclass
class Evidence:
    """The G_NET found, and what the files say for each family (phrases for ``identify``)."""

    generator: Part
    text_dim: int
    found: dict[Family, list[str]] = field(default_factory=lambda: {"dmgan": [], "grgan": []})


def evidence(files: list[ReleaseFile]) -> Evidence | None:
    """What ``files`` say about the family of their G_NET; None without a readable G_NET."""
    gens = generators(files)
    if not gens:
        return None
    try:
        cfg = generator_config(gens[0])
    except T2IError:
        return None
    ev = Evidence(gens[0], cfg.text_dim)
    dm, gr = ev.found["dmgan"], ev.found["grgan"]
    if cfg.text_dim == ITM_DIM:
        gr.append(f"text size {ITM_DIM} (the ITM's)")
    elif cfg.text_dim == DAMSM_DIM:
        dm.append(f"text size {DAMSM_DIM}")
    for d in discriminators(files):
        dc = discriminator_config(d)
        if dc.stage > 0:
            (dm if dc.uncond else gr).append(
                f"D_NET{64 << dc.stage} {'with' if dc.uncond else 'without'} UNCOND_DNET"
            )
    if any(is_checkpoint(f) for f in files):
        gr.append("checkpoint layout")
    for f in files:
        if f.content is not None and is_text_encoder(f):
            dm.append(f"a DAMSM text encoder ({f.name})")
        elif f.content is not None and is_image_encoder(f):
            dm.append(f"a DAMSM image encoder ({f.name})")
    for f in files:
        if f.content is not None and find_itm(f.tensors, str(f.path)) is not None:
            gr.append(f"GR-GAN's ITM ({f.name})")
    for f in run_recipes(files):
        kind = text_kind(f)
        if kind == "itm":
            gr.append(f"text side '{kind}'")
        elif kind in set().union(*DAMSM_TEXT.values()):
            dm.append(f"text side '{kind}'")
    return ev


def identify_g_net(
    family: Family, files: list[ReleaseFile], describe: Callable[[Part], str]
) -> str | None:
    """``identify`` for ``family``'s importer: the release (``describe`` of the G_NET) and what
    told it, or None (no G_NET, an unreadable one, or evidence for the other family only)."""
    ev = evidence(files)
    if ev is None:
        return None
    try:
        what = describe(ev.generator)
    except T2IError:
        return None
    other: Family = "grgan" if family == "dmgan" else "dmgan"
    if ev.found[family]:
        return f"{what}; told by {', '.join(ev.found[family])}"
    if ev.found[other]:
        return None
    return f"{what}; from G_NET alone ({NAMES[other]}'s netG has the same keys and shapes)"
