"""The DM-GAN importer (``t2i-stages import dmgan``): MinfengZhu/DM-GAN's G_NET and D_NETs.

Files: ``netG*.pth`` as DM-GAN's trainer saves it (``torch.save(netG.state_dict())`` of the
EMA weights; the released ``bird_DMGAN.pth`` / ``coco_DMGAN.pth``), the DAMSM it was trained
with (AttnGAN's ``text_encoder*.pth`` and the dataset's ``captions.pickle``, optionally
``image_encoder*.pth``; taken as the ``attngan`` importer takes them, ``damsm_side``) or, as
the alternative, the ``recipe.resolved.yaml`` of a t2i-stages run whose text side is that DAMSM
(``t2i-stages import damsm``'s output; ``text_side``, as ``dfgan`` takes it: ``release_text``),
and optionally the trainer's ``netD0/1/2.pth`` (D_NET64/128/256, each placed by its layers).

DM-GAN's G_NET and D_NET are the networks GR-GAN later forked unchanged, so the key maps and
the config read off the shapes are ``grgan_format``'s, and which of the two released a G_NET is
told by the files around it (``g_net_family``): a DAMSM text side says DM-GAN.

The recipe extends ``builtin:cub/dmgan.yaml`` or ``builtin:coco/dmgan.yaml`` (COCO when R_NUM is
3 with gf 64, or the vocabulary has COCO's size) with the shapes' sizes and the reference's
quirks switched on (docs/importing-dmgan.md): the memory's mask laid out by
``mask.repeat(queryL, 1)`` (``reference_mask_layout``), ``[h' ; h']`` before the ResBlocks
(``duplicate_response``), the pooled image feature detached (``detach_global``), the
repository's spectral-norm power iteration in every D (``spectral_norm: reference``) and, with
the image encoder, DM-GAN's DAMSM resize (``resize_align_corners: true``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2i_stages.plugin import ImportedRelease, ReleaseFile, T2IError

from .captions import is_captions_file
from .damsm_side import damsm_files
from .g_net_family import discriminators, generators, identify_g_net, is_checkpoint
from .grgan_format import (
    NETD_MAP,
    NETG_MAP,
    DConfig,
    GNetConfig,
    discriminator_config,
    generator_config,
)
from .layout import Part
from .recipes import discriminator_slots, layout, loss_slots
from .release_text import ReleaseText, read_release_text
from .text_side import run_recipes

REPO = "MinfengZhu/DM-GAN d515995"
RELEASE_DF = 32  # GAN.DF_DIM of bird_DMGAN.yml and coco_DMGAN.yml
RESOLUTIONS = [64, 128, 256]
HINT = (
    "t2i-stages import dmgan bird_DMGAN.pth text_encoder200.pth captions.pickle "
    "[image_encoder200.pth] [netD0.pth netD1.pth netD2.pth] --out RUN"
)
QUIRK_NOTES = [
    "dynamic memory: reference_mask_layout true (Memory repeats the mask as "
    "mask.repeat(queryL, 1): pixel q of every caption is masked with caption (q mod batch)'s "
    "mask, as the release was trained and sampled), duplicate_response true ([h' ; h'] before "
    "the ResBlocks), detach_global true",
    "discriminators: spectral_norm reference (code/spectral.py: v = W^T u first, then u = W v, "
    "in every forward, eval mode included)",
]


@dataclass(frozen=True)
class DmganConfig(GNetConfig):
    """A G_NET read as DM-GAN's."""

    def describe(self) -> str:
        return f"DM-GAN ({REPO} G_NET: {self.sizes()})"


class DmganImporter:
    """``identify`` / ``convert`` for DM-GAN's release (see the module docstring)."""

    def __init__(self, registry: Any = None):
        self.registry = registry

    def identify(self, files: list[ReleaseFile]) -> str | None:
        """DM-GAN when a file holds G_NET with the memory stages and nothing says GR-GAN only;
        a G_NET with nothing to tell is claimed "from G_NET alone" (``g_net_family``)."""
        return identify_g_net("dmgan", files, lambda g: generator_config(g, DmganConfig).describe())

    def convert(self, files: list[ReleaseFile]) -> ImportedRelease:
        g = self._generator(files)
        cfg = generator_config(g, DmganConfig)
        ds = self._discriminators(files, cfg)
        known = {g.file, *(d.file for d, _ in ds.values())}
        known |= {str(f.path) for f in damsm_files(files) + run_recipes(files)}
        for f in files:
            if str(f.path) not in known and not is_captions_file(f):
                raise T2IError(
                    f"{f.path}: not a file of the DM-GAN release (netG, netD0/1/2, the DAMSM "
                    "text_encoder*.pth / image_encoder*.pth, captions.pickle, or a text-side "
                    f"run's recipe.resolved.yaml): {HINT}"
                )
        side = self._text_side(files, Path(g.file).name, cfg)
        where = layout(len(side.vocab), coco_generator=(cfg.gf, cfg.r_num) == (64, 3))
        release = f"{cfg.describe()}; {side.describe}; recipe builtin:{where}/dmgan.yaml"
        generator, dropped = NETG_MAP.apply(g.tensors, g.source, release)
        components = {"generator": generator}
        sources = {"generator": g.source}
        for stage, (d, _) in sorted(ds.items()):
            what = f"{release} (D_NET{64 << stage})"
            components[f"discriminator_{stage}"], _ = NETD_MAP.apply(d.tensors, d.source, what)
            sources[f"discriminator_{stage}"] = d.source
        text_components, text_sources = side.components(release)
        components.update(text_components)
        sources.update(text_sources)
        widths = {dc.df for _, dc in ds.values()}
        df = widths.pop() if widths else RELEASE_DF
        notes = [*QUIRK_NOTES, *side.notes]
        if not ds:
            notes.append(
                f"no netD files: the discriminators start from their init (DF_DIM {df}, the "
                "release config's) when fine-tuning"
            )
        elif len(ds) < cfg.branches:
            missing = [f"D_NET{64 << i}" for i in range(cfg.branches) if i not in ds]
            notes.append(f"{', '.join(missing)} not among the files: they start from their init")
        return ImportedRelease(
            recipe=dmgan_recipe(cfg, df, side, where, release),
            components=components,
            sources=sources,
            release=release,
            vocab=side.vocab,
            dropped={"generator": dropped} if dropped else {},
            notes=notes,
        )

    def _text_side(self, files: list[ReleaseFile], name: str, cfg: DmganConfig) -> ReleaseText:
        """The DAMSM as the released files, or as a text-side run (``release_text``)."""
        return read_release_text(
            files,
            "dmgan",
            name,
            cfg.text_dim,
            HINT,
            align_corners=True,
            missing=(
                f"dmgan: {name} has no text side; add the DAMSM text encoder it was trained with "
                "(text_encoder*.pth) and the dataset's captions.pickle, or the "
                f"recipe.resolved.yaml of a text-side run (`t2i-stages import damsm`): {HINT}"
            ),
            registry=self.registry,
        )

    @staticmethod
    def _generator(files: list[ReleaseFile]) -> Part:
        gens = generators(files)
        if not gens:
            names = ", ".join(f.name for f in files)
            raise T2IError(
                f"import dmgan: no DM-GAN G_NET (ca_net, h_net1..3 with the memory's A, B, M_w, "
                f"M_r, key, value, img_net1..3) in {names}: {HINT}"
            )
        if len(gens) > 1:
            raise T2IError(
                f"import dmgan: G_NET is in more than one file ({gens[0].source}, "
                f"{gens[1].source}); give one release"
            )
        for f in files:
            if is_checkpoint(f):
                raise T2IError(
                    f"{f.path}: GR-GAN's checkpoint layout (netG with a netD list); DM-GAN's "
                    "trainer saves netG_epoch_*.pth and netD%d.pth: import it with `grgan`"
                )
        return gens[0]

    @staticmethod
    def _discriminators(
        files: list[ReleaseFile], cfg: DmganConfig
    ) -> dict[int, tuple[Part, DConfig]]:
        """The D_NETs by stage, checked against G_NET and each other (one-line errors)."""
        ds: dict[int, tuple[Part, DConfig]] = {}
        release = cfg.describe()
        for d in discriminators(files):
            dc = discriminator_config(d)
            name = f"D_NET{64 << dc.stage}"
            if dc.stage in ds:
                raise T2IError(
                    f"{d.source}: a second {name} (the first is {ds[dc.stage][0].source})"
                )
            if not (dc.uncond and dc.cond):
                raise T2IError(
                    f"{d.source}: {name} without {'UNCOND_DNET' if dc.cond else 'COND_DNET'}; "
                    f"DM-GAN builds every D with both heads (b_jcu; without UNCOND_DNET it is "
                    f"GR-GAN's layout: import it with `grgan`); expected {release}"
                )
            if dc.cond_dim != cfg.text_dim:
                raise T2IError(
                    f"{d.source}: {name}'s COND_DNET takes a sentence of {dc.cond_dim}, but G_NET "
                    f"reads text size {cfg.text_dim} ({release})"
                )
            ds[dc.stage] = (d, dc)
        widths = {dc.df for _, dc in ds.values()}
        if len(widths) > 1:
            raise T2IError(f"import dmgan: the D_NETs have different DF_DIM {sorted(widths)}")
        return ds


def dmgan_recipe(
    cfg: GNetConfig, df: int, side: ReleaseText, where: str, release: str
) -> dict[str, Any]:
    """The recipe that rebuilds the release: the built-in DM-GAN recipe at the release's config,
    the reference's quirks switched on, with the released DAMSM as its text side."""

    def refine() -> dict[str, Any]:
        memory = {"detach_global": True, "duplicate_response": True, "reference_mask_layout": True}
        return {
            "type": "refine",
            "params": {
                "conditioning": {"type": "words"},
                "fusion": {"type": "dynamic_memory", "params": memory},
                "residual_blocks": cfg.r_num,
            },
        }

    initial = {
        "type": "initial",
        "params": {"conditioning": {"type": "ca", "params": {"c_dim": cfg.c_dim}}, "upsamples": 4},
    }
    return {
        "extends": f"builtin:{where}/dmgan.yaml",
        "name": f"dmgan-{where}-import",
        "description": f"{release}; imported by t2i-stages import",
        "generator": {
            "type": "stagewise",
            "params": {
                "text_dim": cfg.text_dim,
                "z_dim": cfg.z_dim,
                "gf": cfg.gf,
                "stages": [initial, refine(), refine()],
            },
        },
        "discriminators": discriminator_slots(RESOLUTIONS, df, cfg.text_dim, spectral=True),
        "losses": loss_slots(where, len(RESOLUTIONS) - 1, matching=side.matching),
        **side.slots,
    }


def build_dmgan_importer(params: Any, registry: Any = None, **ctx: Any) -> DmganImporter:
    return DmganImporter(registry)
