"""The DF-GAN importer (``t2i-stages import dfgan``): tobran/DF-GAN's NetG, NetD and NetC.

Files: ``state_epoch_%03d.pth`` as DF-GAN's ``save_models`` writes it (NetG, NetD, NetC; the
optimizer states are not imported), or a plain NetG (and NetD/NetC) state dict, plus the text
side (``text_side``): DF-GAN conditions on AttnGAN's DAMSM sentence vector, a file the release
does not contain, so the ``recipe.resolved.yaml`` of a t2i-stages run whose text side is a DAMSM
(``t2i-stages import damsm`` of AttnGAN's ``text_encoder*.pth`` and ``captions.pickle``) must be
among the files; without one the import stops with a line saying so.

The recipe extends ``builtin:dfgan.yaml`` with the shapes' config. The model maps 1:1: the
affine conditions are ``[noise ; sentence]`` in both, and the reference's never-used 1x1
shortcut convs of the D blocks that keep their width are built (``unused_shortcuts: true``) so
every key has its place.
"""

from __future__ import annotations

from typing import Any

from t2i_stages.plugin import ImportedRelease, ReleaseFile, T2IError

from .dfgan_format import (
    NETC_ANCHORS,
    NETC_MAP,
    NETD_ANCHORS,
    NETD_MAP,
    NETG_ANCHORS,
    NETG_MAP,
    DfganConfig,
    discriminator_width,
    generator_config,
)
from .layout import Part, find_part
from .text_side import read_text_side, run_recipes

TEXT_KINDS = {"matcher": {"damsm"}, "text_encoder": {"damsm_rnn"}}


def _parts(files: list[ReleaseFile], anchors: tuple[str, ...], what: str) -> Part | None:
    found = [p for f in files if (p := find_part(f.tensors, anchors, str(f.path))) is not None]
    if len(found) > 1:
        raise T2IError(
            f"import dfgan: {what} is in more than one file ({found[0].source}, "
            f"{found[1].source}); give one release"
        )
    return found[0] if found else None


class DfganImporter:
    """``identify`` / ``convert`` for DF-GAN's release (see the module docstring)."""

    def __init__(self, registry: Any):
        self.registry = registry

    def identify(self, files: list[ReleaseFile]) -> str | None:
        """DF-GAN when a file holds NetG (its GBlocks of affine fusion blocks, found under any
        prefix): no other family's generator has those keys."""
        for f in files:
            g = find_part(f.tensors, NETG_ANCHORS, str(f.path))
            if g is not None:
                try:
                    return generator_config(g).describe()
                except T2IError:
                    return f"DF-GAN ({g.source}: NetG keys, config unreadable)"
        return None

    def convert(self, files: list[ReleaseFile]) -> ImportedRelease:
        g = _parts(files, NETG_ANCHORS, "NetG")
        if g is None:
            names = ", ".join(f.name for f in files)
            raise T2IError(f"import dfgan: no DF-GAN NetG (GBlocks.*, fc, to_rgb) in {names}")
        d = _parts(files, NETD_ANCHORS, "NetD")
        c = _parts(files, NETC_ANCHORS, "NetC")
        used = {p.file for p in (g, d, c) if p is not None}
        used |= {str(f.path) for f in run_recipes(files)}
        for f in files:
            if str(f.path) not in used:
                raise T2IError(
                    f"{f.path}: not part of a DF-GAN release (NetG, NetD, NetC) nor a text-side "
                    "run's recipe.resolved.yaml"
                )
        cfg = generator_config(g)
        release = cfg.describe()
        text = read_text_side(
            files,
            "dfgan",
            TEXT_KINDS,
            cfg.cond_dim,
            f"import dfgan: DF-GAN's generator needs its DAMSM text encoder (sentence size "
            f"{cfg.cond_dim}), which is not among the files: import AttnGAN's text_encoder*.pth "
            "and captions.pickle with `t2i-stages import damsm` and add that run's "
            "recipe.resolved.yaml (or that of any run whose matcher is a damsm of that size)",
            self.registry,
        )
        gen, dropped = NETG_MAP.apply(g.tensors, g.source, release)
        components = {"generator": gen}
        sources = {"generator": g.source}
        notes = [*text.notes]
        ndf = cfg.nf
        if d is not None and c is not None:
            ndf = discriminator_width(d, c, cfg)
            trunk, _ = NETD_MAP.apply(d.tensors, d.source, release)
            head, _ = NETC_MAP.apply(c.tensors, c.source, release)
            components["discriminator_0"] = {**trunk, **head}
            same = d.file == c.file
            sources["discriminator_0"] = d.file if same else f"{d.source} + {c.source}"
        elif d is not None or c is not None:
            one, other = (d, "NetC") if d is not None else (c, "NetD")
            name = "NetD" if d is not None else "NetC"
            raise T2IError(f"{one.source}: {name} without {other}; they form one D, give both")
        else:
            notes.append("no NetD/NetC among the files: the discriminator starts from its init")
        components.update(text.components)
        sources.update(text.sources)
        return ImportedRelease(
            recipe=dfgan_recipe(cfg, ndf, text.slots),
            components=components,
            sources=sources,
            release=release,
            vocab=text.vocab,
            dropped={"generator": dropped} if dropped else {},
            notes=notes,
        )


def dfgan_recipe(
    cfg: DfganConfig, ndf: int, text: dict[str, dict[str, Any] | None]
) -> dict[str, Any]:
    """The recipe that rebuilds the release: ``builtin:dfgan.yaml`` at the release's config,
    with the text side of the named run."""
    return {
        "extends": "builtin:dfgan.yaml",
        "name": "dfgan-import",
        "description": f"{cfg.describe()}, imported.",
        "generator": {
            "type": "dfgan",
            "params": {
                "nf": cfg.nf,
                "z_dim": cfg.z_dim,
                "text_dim": cfg.cond_dim,
                "resolution": cfg.resolution,
                "conditioning": {"type": "sentence"},
                "fusion": {"type": "affine"},
            },
        },
        "discriminators": [
            {
                "type": "dfgan",
                "params": {
                    "nf": ndf,
                    "text_dim": cfg.cond_dim,
                    "cond_head": True,
                    "unused_shortcuts": True,  # the reference's never-used conv_s, kept 1:1
                    "conditioning": {"type": "sentence"},
                },
            }
        ],
        "matcher": text["matcher"],
        "text_encoder": text["text_encoder"],
    }


def build_dfgan_importer(params: Any, registry: Any = None, **ctx: Any) -> DfganImporter:
    return DfganImporter(registry)
