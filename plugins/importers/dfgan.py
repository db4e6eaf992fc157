"""The DF-GAN importer (``t2i-stages import dfgan``): tobran/DF-GAN's NetG, NetD and NetC.

Files: ``state_epoch_%03d.pth`` as DF-GAN's ``save_models`` writes it (NetG, NetD, NetC; the
optimizer states are not imported), or a plain NetG (and NetD/NetC) state dict, plus the text
side the release does not contain: DF-GAN conditions on the sentence vector of AttnGAN's DAMSM
text encoder. It is given as the released files themselves (``text_encoder*.pth`` and the
dataset's ``captions.pickle``, optionally ``image_encoder*.pth``), taken as the ``attngan`` and
``dmgan`` importers take them (``damsm_side``), or, as the alternative, as the
``recipe.resolved.yaml`` of a t2i-stages run whose text side is a DAMSM (``text_side``: the
output of ``t2i-stages import damsm``, or a run that trained one); ``release_text`` picks the
source, and without either the import stops with a line saying so.

DF-GAN's ``prepare_models`` loads the image encoder too, frozen, but its ``train`` never
receives it (the one use, a ``MAP`` similarity term, is commented out): the release is trained
on the sentence vector alone with no matching loss. So an image encoder among the files makes
the run's matcher the released DAMSM (R-precision), resized as DF-GAN's ``CNN_ENCODER`` does
(``align_corners=False``), and the recipe keeps ``builtin:dfgan.yaml``'s losses.

The recipe extends ``builtin:dfgan.yaml`` with the shapes' config. The model maps 1:1: the
affine conditions are ``[noise ; sentence]`` in both, and the reference's never-used 1x1
shortcut convs of the D blocks that keep their width are built (``unused_shortcuts: true``) so
every key has its place.
"""

from __future__ import annotations

from pathlib import Path
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
from .release_text import ReleaseText, read_release_text

HINT = (
    "t2i-stages import dfgan state_epoch_290.pth text_encoder100.pth captions.pickle "
    "[image_encoder100.pth] --out RUN"
)
NO_MATCHING_NOTE = (
    "image encoder: DF-GAN's prepare_models loads it frozen but its train() never uses it (the "
    "MAP term is commented out): the run's damsm matcher serves R-precision, no matching loss "
    "is added; resize align_corners false, as DF-GAN's CNN_ENCODER interpolates"
)


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
        cfg = generator_config(g)
        release = cfg.describe()
        text = self._text_side(files, g, cfg)
        used = {p.file for p in (g, d, c) if p is not None} | text.files
        for f in files:
            if str(f.path) not in used:
                raise T2IError(
                    f"{f.path}: not part of a DF-GAN release (NetG, NetD, NetC, the DAMSM "
                    "text_encoder*.pth / image_encoder*.pth, captions.pickle) nor a text-side "
                    f"run's recipe.resolved.yaml: {HINT}"
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
        text_components, text_sources = text.components(release)
        components.update(text_components)
        sources.update(text_sources)
        return ImportedRelease(
            recipe=dfgan_recipe(cfg, ndf, text.slots),
            components=components,
            sources=sources,
            release=release,
            vocab=text.vocab,
            dropped={"generator": dropped} if dropped else {},
            notes=notes,
        )

    def _text_side(self, files: list[ReleaseFile], g: Part, cfg: DfganConfig) -> ReleaseText:
        """The DAMSM as the released files, or as a text-side run (``release_text``)."""
        text = read_release_text(
            files,
            "dfgan",
            f"{Path(g.file).name}'s NetG",
            cfg.cond_dim,
            HINT,
            align_corners=False,
            missing=(
                f"import dfgan: DF-GAN's generator needs its DAMSM text encoder (sentence size "
                f"{cfg.cond_dim}), which is not among the files: add AttnGAN's text_encoder*.pth "
                f"and the dataset's captions.pickle ({HINT}), or the recipe.resolved.yaml of a "
                "text-side run (`t2i-stages import damsm`, or any run whose matcher is a damsm "
                "of that size)"
            ),
            registry=self.registry,
            matching_losses=False,
        )
        if text.side is not None and text.side.image is not None:
            text.notes = [*text.notes[:-1], NO_MATCHING_NOTE]
        return text


def dfgan_recipe(cfg: DfganConfig, ndf: int, text: dict[str, Any]) -> dict[str, Any]:
    """The recipe that rebuilds the release: ``builtin:dfgan.yaml`` at the release's config,
    with the text side's slots (``matcher`` / ``text_encoder``, and ``eval`` without a
    matcher); the builtin's losses stay (no matching loss, as the reference)."""
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
        **text,
    }


def build_dfgan_importer(params: Any, registry: Any = None, **ctx: Any) -> DfganImporter:
    return DfganImporter(registry)
