"""AttnGAN's released ``netG`` (taoxugit/AttnGAN ``G_NET``) with its DAMSM, as a ``stagewise`` run.

A release is ``netG*.pth`` (``torch.save(netG.state_dict())``, the EMA weights) with the DAMSM
text encoder it was trained with (``text_encoder*.pth``) and the dataset's ``captions.pickle``:
the generator has no text side of its own (``damsm_side``, shared with DM-GAN). The image
encoder (``image_encoder*.pth``) is accepted too and makes the run's matcher the released DAMSM
(for the matching losses and R-precision); without it the text encoder is the run's
``text_encoder``. The trainer's
``netD0/1/2.pth`` (D_NET64/128/256) are accepted as the stages' discriminators.

The config is read from the shapes: nef and c_dim from ``ca_net.fc`` (4*c_dim x nef), gf from
``img_net1`` (3 x gf x 3 x 3), z_dim from ``h_net1.fc.0`` (16gf*4*4*2 x (c_dim + z_dim)), the
stages from the ``img_netN`` heads, R_NUM from ``h_net2.residual.N``, df and the stage of a D
from its trunk. The recipe extends ``builtin:cub/attngan.yaml`` or ``builtin:coco/attngan.yaml``
(``recipes.layout``) with those sizes and the reference's quirks switched on: the word attention's
mask as ``mask.repeat(queryL, 1)`` lays it out (``reference_mask_layout: true``, AttnGAN#93).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t2i_stages.plugin import ImportedRelease, KeyMap, KeyMapError, ReleaseFile

from .damsm import REPO, is_image_encoder, is_text_encoder, unknown_files
from .damsm_side import DamsmSide, read_damsm_side
from .recipes import BUILTIN_DF, discriminator_slots, layout, loss_slots

GENERATOR_KEYS = KeyMap(
    [
        (r"ca_net\.fc\.(weight|bias)", r"stages.0.conditioning.fc.\1"),
        (r"h_net1\.fc\.(.+)", r"stages.0.fc.\1"),
        (r"h_net1\.upsample1\.(.+)", r"stages.0.upsample.0.\1"),
        (r"h_net1\.upsample2\.(.+)", r"stages.0.upsample.1.\1"),
        (r"h_net1\.upsample3\.(.+)", r"stages.0.upsample.2.\1"),
        (r"h_net1\.upsample4\.(.+)", r"stages.0.upsample.3.\1"),
        (r"h_net2\.att\.conv_context\.weight", r"stages.1.fusion.project.weight"),
        (r"h_net2\.(residual|upsample)\.(.+)", r"stages.1.\1.\2"),
        (r"h_net3\.att\.conv_context\.weight", r"stages.2.fusion.project.weight"),
        (r"h_net3\.(residual|upsample)\.(.+)", r"stages.2.\1.\2"),
        (r"img_net1\.img\.0\.weight", r"heads.0.conv.weight"),
        (r"img_net2\.img\.0\.weight", r"heads.1.conv.weight"),
        (r"img_net3\.img\.0\.weight", r"heads.2.conv.weight"),
    ]
)
"""G_NET -> StagewiseGenerator (initial, refine, refine; one to_image head per stage)."""

DISCRIMINATOR_KEYS = KeyMap(
    [
        (r"img_code_s16\.0\.weight", r"trunk.0.weight"),
        (r"img_code_s16\.2\.(.+)", r"trunk.2.0.\1"),
        (r"img_code_s16\.3\.(.+)", r"trunk.2.1.\1"),
        (r"img_code_s16\.5\.(.+)", r"trunk.3.0.\1"),
        (r"img_code_s16\.6\.(.+)", r"trunk.3.1.\1"),
        (r"img_code_s16\.8\.(.+)", r"trunk.4.0.\1"),
        (r"img_code_s16\.9\.(.+)", r"trunk.4.1.\1"),
        (r"img_code_s32\.([01])\.(.+)", r"trunk.5.\1.\2"),
        (r"img_code_s32_1\.([01])\.(.+)", r"trunk.6.\1.\2"),
        (r"img_code_s64\.([01])\.(.+)", r"trunk.6.\1.\2"),
        (r"img_code_s64_1\.([01])\.(.+)", r"trunk.7.\1.\2"),
        (r"img_code_s64_2\.([01])\.(.+)", r"trunk.8.\1.\2"),
        (r"UNCOND_DNET\.outlogits\.0\.(weight|bias)", r"uncond_out.\1"),
        (r"COND_DNET\.jointConv\.([01])\.(.+)", r"cond_joint.\1.\2"),
        (r"COND_DNET\.outlogits\.0\.(weight|bias)", r"cond_out.\1"),
    ]
)
"""D_NET64 / D_NET128 / D_NET256 -> StagewiseDiscriminator (norm batch, both heads)."""

HINT = (
    "t2i-stages import attngan netG.pth text_encoder200.pth captions.pickle "
    "[image_encoder200.pth] [netD0.pth netD1.pth netD2.pth] --out RUN"
)


def is_generator(file: ReleaseFile) -> bool:
    """An AttnGAN G_NET: CA, the initial stage and word attention (DM-GAN's has h_net2.A, ...)."""
    keys = file.tensors
    return {
        "ca_net.fc.weight",
        "h_net1.fc.0.weight",
        "h_net2.att.conv_context.weight",
    } <= keys.keys() and all(k.startswith(("ca_net.", "h_net", "img_net")) for k in keys)


def is_discriminator(file: ReleaseFile) -> bool:
    """An AttnGAN D_NET64/128/256: BatchNorm trunk (DM-GAN's is spectral-normed, no BN)."""
    keys = file.tensors
    return {"img_code_s16.0.weight", "img_code_s16.3.running_var"} <= keys.keys() and all(
        k.startswith(("img_code_s", "UNCOND_DNET.", "COND_DNET.")) for k in keys
    )


def _shape(file: ReleaseFile, key: str) -> tuple[int, ...]:
    if key not in file.tensors:
        raise KeyMapError(f"{file.path}: has no '{key}'; not an AttnGAN G_NET state dict")
    return tuple(int(d) for d in file.tensors[key].shape)


@dataclass
class GeneratorConfig:
    """What a netG's shapes tell: AttnGAN's cfg.GAN / cfg.TEXT / cfg.TREE values."""

    nef: int
    c_dim: int
    z_dim: int
    gf: int
    stages: int
    r_num: int

    @property
    def resolutions(self) -> list[int]:
        return [64 * 2**i for i in range(self.stages)]

    def describe(self) -> str:
        return (
            f"netG with {self.stages} stages ({self.resolutions[0]}-{self.resolutions[-1]} px), "
            f"gf {self.gf}, nef {self.nef}, z_dim {self.z_dim}, c_dim {self.c_dim}, "
            f"R_NUM {self.r_num}"
        )


def read_generator(file: ReleaseFile) -> GeneratorConfig:
    """The config of a G_NET file, from its tensors' shapes."""
    four_c, nef = _shape(file, "ca_net.fc.weight")
    c_dim = four_c // 4
    gf = _shape(file, "img_net1.img.0.weight")[1]
    fc_in = _shape(file, "h_net1.fc.0.weight")[1]
    keys = file.tensors
    stages = 1 + sum(f"img_net{n}.img.0.weight" in keys for n in (2, 3))
    blocks = {k.split(".")[2] for k in keys if k.startswith("h_net2.residual.")}
    if four_c % 4 or fc_in <= c_dim:
        raise KeyMapError(
            f"{file.path}: ca_net.fc.weight is {four_c}x{nef} and h_net1.fc.0.weight takes "
            f"{fc_in} inputs: not AttnGAN's 4*c_dim x nef and c_dim + z_dim"
        )
    return GeneratorConfig(nef, c_dim, fc_in - c_dim, gf, stages, len(blocks))


@dataclass
class DiscriminatorFile:
    """A netD file, the stage it judges and its sizes."""

    file: ReleaseFile
    stage: int
    df: int
    nef: int


def read_discriminator(file: ReleaseFile) -> DiscriminatorFile:
    keys = file.tensors
    stage = 2 if "img_code_s64.0.weight" in keys else 1 if "img_code_s32_1.0.weight" in keys else 0
    df = int(keys["img_code_s16.0.weight"].shape[0])
    joint = keys.get("COND_DNET.jointConv.0.weight")
    if joint is None:
        raise KeyMapError(f"{file.path}: has no COND_DNET.jointConv (AttnGAN's D has both heads)")
    return DiscriminatorFile(file, stage, df, int(joint.shape[1]) - 8 * df)


class AttnganImporter:
    """``t2i-stages import attngan netG.pth text_encoder.pth captions.pickle [...]``."""

    def identify(self, files: list[ReleaseFile]) -> str | None:
        weights = [f for f in files if f.content is not None]
        generators = [f for f in weights if is_generator(f)]
        known = (is_generator, is_discriminator, is_text_encoder, is_image_encoder)
        if not generators or not all(any(k(f) for k in known) for f in weights):
            return None
        try:
            return f"AttnGAN ({REPO}): {read_generator(generators[0]).describe()}"
        except KeyMapError:
            return None

    def convert(self, files: list[ReleaseFile]) -> ImportedRelease:
        weights = [f for f in files if f.content is not None]
        gens = [f for f in weights if is_generator(f)]
        texts = [f for f in weights if is_text_encoder(f)]
        images = [f for f in weights if is_image_encoder(f)]
        ds = [read_discriminator(f) for f in weights if is_discriminator(f)]
        unknown_files(files, gens + texts + images + [d.file for d in ds], "AttnGAN")
        if len(gens) != 1:
            raise KeyMapError(f"attngan: give one AttnGAN netG (got {len(gens)}): {HINT}")
        g = gens[0]
        cfg = read_generator(g)
        side = read_damsm_side(files, "attngan", g.name, cfg.nef, HINT, align_corners=False)
        self._check_discriminators(g, cfg, ds)
        where = layout(side.text.vocab_size, coco_generator=(cfg.gf, cfg.r_num) == (48, 3))
        release = (
            f"AttnGAN ({REPO}): {cfg.describe()}; {side.text.describe()}; "
            f"recipe builtin:{where}/attngan.yaml"
        )
        components, sources = self._components(g, side, ds, release)
        df = ds[0].df if ds else BUILTIN_DF[where]
        notes = [
            "word attention: reference_mask_layout true (AttnGAN#93: pixel q of every caption is "
            "masked with caption (q mod batch)'s mask, as the release was trained and sampled)",
            *side.notes(),
        ]
        if not ds:
            notes.append("no netD files: the discriminators start untrained when fine-tuning")
        return ImportedRelease(
            recipe=self._recipe(cfg, side, where, df, release),
            components=components,
            sources=sources,
            release=release,
            vocab=side.vocab,
            dropped={name: [] for name in components},
            notes=notes,
        )

    @staticmethod
    def _check_discriminators(
        g: ReleaseFile, cfg: GeneratorConfig, ds: list[DiscriminatorFile]
    ) -> None:
        """The Ds belong to the netG: one df and its nef, one D per stage it has."""
        seen: dict[int, DiscriminatorFile] = {}
        for d in ds:
            res = 64 * 2**d.stage
            if d.stage >= cfg.stages:
                raise KeyMapError(
                    f"{d.file.path}: a {res} px D, but {g.name} stops at {cfg.resolutions[-1]} px"
                )
            if d.stage in seen:
                raise KeyMapError(
                    f"{d.file.path}: a second {res} px D (and {seen[d.stage].file.name})"
                )
            if (d.df, d.nef) != (ds[0].df, cfg.nef):
                raise KeyMapError(
                    f"{d.file.path}: df {d.df}, nef {d.nef}; the release has df {ds[0].df}, "
                    f"nef {cfg.nef}"
                )
            seen[d.stage] = d

    @staticmethod
    def _components(
        g: ReleaseFile, side: DamsmSide, ds: list[DiscriminatorFile], release: str
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        generator, _ = GENERATOR_KEYS.apply(g.tensors, str(g.path), release)
        components = {"generator": generator}
        sources = {"generator": str(g.path)}
        text_components, text_sources = side.components(release)
        components.update(text_components)
        sources.update(text_sources)
        for d in ds:
            name = f"discriminator_{d.stage}"
            components[name], _ = DISCRIMINATOR_KEYS.apply(
                d.file.tensors, str(d.file.path), release
            )
            sources[name] = str(d.file.path)
        return components, sources

    @staticmethod
    def _recipe(
        cfg: GeneratorConfig, side: DamsmSide, where: str, df: int, release: str
    ) -> dict[str, Any]:
        stages: list[dict[str, Any]] = [
            {
                "type": "initial",
                "params": {"conditioning": {"type": "ca", "params": {"c_dim": cfg.c_dim}}},
            }
        ]
        for _ in range(cfg.stages - 1):
            stages.append(
                {
                    "type": "refine",
                    "params": {
                        "conditioning": {"type": "words"},
                        "fusion": {
                            "type": "word_attention",
                            "params": {"reference_mask_layout": True},
                        },
                        "residual_blocks": cfg.r_num,
                    },
                }
            )
        return {
            "extends": f"builtin:{where}/attngan.yaml",
            "name": f"attngan-{where}-import",
            "description": f"{release}; imported by t2i-stages import",
            "data": {"dataset": {"params": {"resolutions": cfg.resolutions}}},
            "generator": {
                "type": "stagewise",
                "params": {"text_dim": cfg.nef, "z_dim": cfg.z_dim, "gf": cfg.gf, "stages": stages},
            },
            "discriminators": discriminator_slots(cfg.resolutions, df, cfg.nef),
            "losses": loss_slots(where, cfg.stages - 1, matching=side.matching),
            **side.slots(),
        }


def build_attngan_importer(params: Any, **ctx: Any) -> AttnganImporter:
    return AttnganImporter()
