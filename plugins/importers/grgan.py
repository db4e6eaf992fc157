"""The GR-GAN importer (``t2i-stages import grgan``): BoO-18/GR-GAN's G_NET and its D_NETs.

Files: ``checkpoint_%04d.pth`` as GR-GAN's trainer saves it (``netG`` is the EMA generator,
``netD`` the list of the three discriminators; the Adamax states are not imported), or plain
``netG*.pth`` / ``netD%d.pth`` state dicts, plus the text side: GR-GAN's generator is trained
on its CLIP-based ITM's features, so its ``ITM_model*.pth`` with CLIP's
``bpe_simple_vocab_16e6.txt.gz`` (the ``itm`` importer's files, ``itm.itm_side``), or the
``recipe.resolved.yaml`` of a t2i-stages run whose matcher is an ``itm`` of the generator's
text size (``text_side``), must be among the files. Without one the import stops with a line
saying so.

The recipe extends ``builtin:grgan.yaml`` with the shapes' config and switches on what
reproducing the release needs (docs/importing-dfgan-grgan.md): the off-by-one word mask
(``shift_mask``) and the mask/batch mix-up of the memory (``reference_mask_layout``) at both
refinement stages, and the repository's spectral-norm power iteration in every D
(``spectral_norm: reference``). D_NET64's conditional head, which GR-GAN builds and never uses,
is built too (``cond_head: true`` with ``conditioning: none``), so every key has its place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from t2i_stages.plugin import ImportedRelease, ReleaseFile, T2IError

from .g_net_family import discriminators, generators, identify_g_net
from .grgan_format import (
    NETD_MAP,
    NETG_MAP,
    DConfig,
    GrganConfig,
    discriminator_config,
    generator_config,
)
from .itm import ASSETS, ItmSide, itm_side
from .layout import Part
from .text_side import TextSide, read_text_side, run_recipes

TEXT_KINDS = {"matcher": {"itm"}, "text_encoder": set()}
D_CONDITIONS = ("none", "sentence", "mean_words")  # D1 unconditional, D2 sentence, D3 mean word


class GrganImporter:
    """``identify`` / ``convert`` for GR-GAN's release (see the module docstring)."""

    def __init__(self, registry: Any):
        self.registry = registry

    def identify(self, files: list[ReleaseFile]) -> str | None:
        """GR-GAN when a file holds G_NET with DM-GAN's memory stages and nothing says DM-GAN.

        GR-GAN's G_NET has exactly DM-GAN's keys and shapes, so the generator alone cannot tell
        them apart; the files around it can (``g_net_family``, the one place both importers
        weigh that evidence). With nothing to tell (a G_NET of another text size, alone) this
        claims the files and says so in what it returns: the ``dmgan`` importer claims them
        too, and ``import auto`` refuses, naming both, rather than guessing.
        """
        return identify_g_net("grgan", files, lambda g: generator_config(g).describe())

    def convert(self, files: list[ReleaseFile]) -> ImportedRelease:
        gens = generators(files)
        if not gens:
            names = ", ".join(f.name for f in files)
            raise T2IError(f"import grgan: no GR-GAN G_NET (ca_net, h_net1..3, img_net) in {names}")
        if len(gens) > 1:
            raise T2IError(
                f"import grgan: G_NET is in more than one file ({gens[0].source}, "
                f"{gens[1].source}); give one release"
            )
        g = gens[0]
        cfg = generator_config(g)
        release = cfg.describe()
        ds: dict[int, tuple[Part, DConfig]] = {}
        for d in discriminators(files):
            dc = discriminator_config(d)
            if dc.stage in ds:
                raise T2IError(
                    f"{d.source}: a second D_NET{64 << dc.stage} (the first is in "
                    f"{ds[dc.stage][0].source})"
                )
            if dc.stage > 0 and dc.uncond:
                raise T2IError(
                    f"{d.source}: D_NET{64 << dc.stage} with UNCOND_DNET is DM-GAN's layout; "
                    f"GR-GAN builds it without (expected {release})"
                )
            ds[dc.stage] = (d, dc)
        itm = itm_side(files, "grgan")
        used = (
            {g.file} | {d.file for d, _ in ds.values()} | {str(f.path) for f in run_recipes(files)}
        )
        used |= itm.files if itm is not None else set()
        for f in files:
            if str(f.path) not in used:
                raise T2IError(
                    f"{f.path}: not part of a GR-GAN release (G_NET, D_NET64/128/256, "
                    "ITM_model*.pth with its BPE file) nor a text-side run's recipe.resolved.yaml"
                )
        widths = {dc.df for _, dc in ds.values()}
        if len(widths) > 1:
            raise T2IError(f"import grgan: the D_NETs have different DF_DIM {sorted(widths)}")
        if itm is not None and run_recipes(files):
            raise T2IError(
                f"import grgan: two text sides ({itm.part.file} and "
                f"{run_recipes(files)[0].path}); give one"
            )
        text = (
            released_itm(itm, cfg.text_dim)
            if itm is not None
            else read_text_side(
                files,
                "grgan",
                TEXT_KINDS,
                cfg.text_dim,
                f"import grgan: GR-GAN's generator needs its text side, the ITM (text size "
                f"{cfg.text_dim}), which is not among the files: add its ITM_model*.pth and "
                "CLIP's bpe_simple_vocab_16e6.txt.gz, or the recipe.resolved.yaml of a "
                f"t2i-stages run whose matcher is an itm of text_dim {cfg.text_dim}",
                self.registry,
            )
        )
        gen, dropped = NETG_MAP.apply(g.tensors, g.source, release)
        components = {"generator": gen}
        sources = {"generator": g.source}
        notes = [*text.notes]
        for stage, (d, _) in sorted(ds.items()):
            sd, _ = NETD_MAP.apply(d.tensors, d.source, f"{release} (D_NET{64 << stage})")
            components[f"discriminator_{stage}"] = sd
            sources[f"discriminator_{stage}"] = d.source
        df = widths.pop() if widths else cfg.gf // 2
        if not ds:
            notes.append(
                f"no D_NET among the files: the discriminators start from their init, DF_DIM "
                f"{df} (GF_DIM/2, as the release config 64/32)"
            )
        elif len(ds) < cfg.branches:
            missing = [f"D_NET{64 << i}" for i in range(cfg.branches) if i not in ds]
            notes.append(f"{', '.join(missing)} not among the files: they start from their init")
        components.update(text.components)
        sources.update(text.sources)
        return ImportedRelease(
            recipe=grgan_recipe(cfg, df, ds, text.slots),
            components=components,
            sources=sources,
            release=release,
            vocab=text.vocab,
            dropped={"generator": dropped} if dropped else {},
            notes=notes,
            assets={ASSETS: itm.write_assets} if itm is not None else {},
        )


def released_itm(itm: ItmSide, text_dim: int) -> TextSide:
    """The released ITM as the generator's text side (its sizes checked against G's)."""
    if itm.cfg.nef != text_dim:
        raise T2IError(
            f"{itm.part.source}: the ITM gives text features of size {itm.cfg.nef}; the GR-GAN "
            f"generator takes {text_dim}"
        )
    return TextSide(
        run=Path(itm.part.file).parent,
        slots={"matcher": itm.matcher_slot(), "text_encoder": None},
        components={"matcher": itm.components()},
        sources={"matcher": itm.part.source},
        vocab=None,  # CLIP tokenizes: the run's word vocabulary is its dataset's
        kind="matcher 'itm'",
        notes=[f"text side: GR-GAN's ITM from {itm.part.source}"],
    )


def grgan_recipe(
    cfg: GrganConfig,
    df: int,
    ds: dict[int, tuple[Part, DConfig]],
    text: dict[str, dict[str, Any] | None],
) -> dict[str, Any]:
    """The recipe that rebuilds the release: ``builtin:grgan.yaml`` at the release's config,
    the reference's quirks switched on, with the text side of the named run."""
    memory = {"type": "dynamic_memory", "params": {"reference_mask_layout": True}}

    def refine(conditioning: str) -> dict[str, Any]:
        return {
            "type": "refine",
            "params": {
                "conditioning": {"type": conditioning, "params": {"shift_mask": True}},
                "fusion": memory,
                "residual_blocks": cfg.r_num,
            },
        }

    discriminators = []
    for stage, condition in enumerate(D_CONDITIONS[: cfg.branches]):
        params: dict[str, Any] = {
            "df": df,
            "text_dim": cfg.text_dim,
            "norm": "spectral",
            "spectral_norm": "reference",
            "init": "pytorch",
            "uncond_head": stage == 0,  # D_NET64 only (b_jcu); GR-GAN builds the others without
            "cond_head": True,  # D_NET64's too: built and never used, as GR-GAN does
            "conditioning": {"type": condition},
        }
        discriminators.append({"type": "stagewise", "params": params})
    return {
        "extends": "builtin:grgan.yaml",
        "name": "grgan-import",
        "description": f"{cfg.describe()}, imported.",
        "generator": {
            "type": "stagewise",
            "params": {
                "text_dim": cfg.text_dim,
                "z_dim": cfg.z_dim,
                "gf": cfg.gf,
                "stages": [
                    {
                        "type": "initial",
                        "params": {
                            "conditioning": {"type": "ca", "params": {"c_dim": cfg.c_dim}},
                            "upsamples": 4,
                        },
                    },
                    refine("sentence_tiled"),
                    refine("words"),
                ],
            },
        },
        "discriminators": discriminators,
        "matcher": text["matcher"],
        "text_encoder": text["text_encoder"],
    }


def build_grgan_importer(params: Any, registry: Any = None, **ctx: Any) -> GrganImporter:
    return GrganImporter(registry)
