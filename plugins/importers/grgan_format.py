r"""GR-GAN's release format (BoO-18/GR-GAN ``code/model.py``, ``code/spectral.py``): key maps,
fingerprints and the config read off the tensor shapes. No torch here.

The release is ``checkpoint_%04d.pth`` as ``GR_trainer.save_model`` writes it,
``{"epoch", "netG": the EMA generator, "optimG", "netD": [D_NET64, D_NET128, D_NET256],
"optimD"}``, or plain ``netG*.pth`` / ``netD%d.pth`` state dicts. The discriminators keep the
repository's own spectral norm (``code/spectral.py``): each normalised conv stores
``module.weight_bar`` (the weight), ``module.weight_u``, ``module.weight_v`` and
``module.bias``, which map onto torch's parametrization (``parametrizations.weight.original``,
``parametrizations.weight.0._u`` / ``._v``). The tables are in docs/importing-dfgan-grgan.md.

GR-GAN is a DM-GAN fork: G_NET has DM-GAN's keys and shapes exactly; what differs is what the
stages are fed (stage 2 the tiled sentence), the text size (the ITM's 512, DM-GAN's DAMSM 256)
and the discriminators (GR-GAN builds D_NET128/D_NET256 without an unconditional head). So the
maps and the config readers here are DM-GAN's too: the ``dmgan`` importer uses them as they are
(``GNetConfig`` is the sizes, each family's subclass says whose release they describe), and
``g_net_family`` tells the two families' files apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

from t2i_stages.plugin import KeyMap

from .layout import Part, indices, need, shape

REPO = "BoO-18/GR-GAN 3d84ec5"
NETG_ANCHORS = ("h_net2.M_w.0.weight", "ca_net.fc.weight", "h_net1.fc.0.weight")
NETD_ANCHORS = ("img_code_s16.0.module.weight_bar",)
ITM_DIM = 512  # the ITM's MLP hard-codes LayerNorm(512) after dense_word: nef is 512
DAMSM_DIM = 256  # DM-GAN's (and AttnGAN's) DAMSM sentence size in every released config


def _netg_rules() -> list[tuple[str, str | None]]:
    rules: list[tuple[str, str | None]] = [
        (r"ca_net\.fc\.(weight|bias)", r"stages.0.conditioning.fc.\1"),
        (r"h_net1\.fc\.(.*)", r"stages.0.fc.\1"),
    ]
    rules += [
        (rf"h_net1\.upsample{k}\.(.*)", rf"stages.0.upsample.{k - 1}.\1") for k in range(1, 5)
    ]
    for n in (2, 3):
        ours = f"stages.{n - 1}"
        rules += [
            (rf"h_net{n}\.A\.weight", f"{ours}.fusion.gate_words.weight"),
            (rf"h_net{n}\.B\.weight", f"{ours}.fusion.gate_image.weight"),
            (rf"h_net{n}\.M_w\.0\.(weight|bias)", rf"{ours}.fusion.write_words.0.\1"),
            (rf"h_net{n}\.M_r\.0\.(weight|bias)", rf"{ours}.fusion.write_image.0.\1"),
            (rf"h_net{n}\.(key|value)\.0\.(weight|bias)", rf"{ours}.fusion.\1.0.\2"),
            (rf"h_net{n}\.response_gate\.0\.(weight|bias)", rf"{ours}.fusion.response_gate.\1"),
            (rf"h_net{n}\.residual\.(\d+)\.block\.(.*)", rf"{ours}.residual.\1.block.\2"),
            (rf"h_net{n}\.upsample\.(.*)", rf"{ours}.upsample.\1"),
        ]
    rules += [(rf"img_net{k}\.img\.0\.weight", f"heads.{k - 1}.conv.weight") for k in (1, 2, 3)]
    return rules


NETG_MAP = KeyMap(_netg_rules())
"""G_NET -> the ``stagewise`` generator (95 keys at R_NUM 1, 143 at R_NUM 3, all mapped)."""

SN_CONVS = {
    "img_code_s16.0": "trunk.0",
    "img_code_s16.2": "trunk.2.0",
    "img_code_s16.4": "trunk.3.0",
    "img_code_s16.6": "trunk.4.0",
    "img_code_s32.0": "trunk.5.0",
    "img_code_s32_1.0": "trunk.6.0",  # D_NET128's Block3x3
    "img_code_s64.0": "trunk.6.0",  # D_NET256's second downBlock
    "img_code_s64_1.0": "trunk.7.0",
    "img_code_s64_2.0": "trunk.8.0",
    "COND_DNET.jointConv.0": "cond_joint.0",
}
"""The spectral-normalised convs of D_NET64/128/256 and where the trunk has them."""

SN_TENSORS = {
    "weight_bar": "parametrizations.weight.original",
    "weight_u": "parametrizations.weight.0._u",
    "weight_v": "parametrizations.weight.0._v",
    "bias": "bias",
}


def _netd_rules() -> list[tuple[str, str | None]]:
    rules: list[tuple[str, str | None]] = []
    for ref, ours in SN_CONVS.items():
        for theirs, mine in SN_TENSORS.items():
            rules.append((rf"{re.escape(ref)}\.module\.{theirs}", f"{ours}.{mine}"))
    rules += [
        (r"COND_DNET\.outlogits\.0\.(weight|bias)", r"cond_out.\1"),
        (r"UNCOND_DNET\.outlogits\.0\.(weight|bias)", r"uncond_out.\1"),
    ]
    return rules


NETD_MAP = KeyMap(_netd_rules())
"""D_NET64/128/256 -> the ``stagewise`` discriminator with ``norm: spectral`` (30 keys for
GR-GAN's D_NET128, 32 for DM-GAN's, which keeps UNCOND_DNET)."""


@dataclass(frozen=True)
class GNetConfig:
    """What G_NET's shapes say: GF_DIM, Z_DIM, CONDITION_DIM, EMBEDDING_DIM, R_NUM, branches."""

    gf: int
    z_dim: int
    c_dim: int
    text_dim: int
    r_num: int
    branches: int

    def sizes(self) -> str:
        return (
            f"gf {self.gf}, z {self.z_dim}, c {self.c_dim}, text {self.text_dim}, "
            f"R_NUM {self.r_num}, 64/128/256 px"
        )

    def describe(self) -> str:
        return f"G_NET ({self.sizes()})"


@dataclass(frozen=True)
class GrganConfig(GNetConfig):
    """A G_NET read as GR-GAN's."""

    def describe(self) -> str:
        return f"GR-GAN ({REPO} G_NET: {self.sizes()})"


ConfigT = TypeVar("ConfigT", bound=GNetConfig)


@dataclass(frozen=True)
class DConfig:
    """One D_NET: its stage (0 = 64 px), DF_DIM, whether it has UNCOND_DNET and COND_DNET, and
    the condition size COND_DNET's jointConv takes after the 8df features (None without it)."""

    stage: int
    df: int
    uncond: bool
    cond: bool
    cond_dim: int | None = None


def generator_config(g: Part, kind: type[ConfigT] = GrganConfig) -> ConfigT:
    """G_NET's config (as ``kind``, the family's reading of it): CA fc is Linear(nef, 4c);
    INIT_STAGE_G's fc Linear(c + z, 16gf*4*4*2); R_NUM ResBlocks per next stage."""
    four_c, nef = shape(g, "ca_net.fc.weight", 2)
    need(four_c % 4 == 0, g, f"'ca_net.fc.weight' has {four_c} rows, not 4*CONDITION_DIM")
    rows, in_dim = shape(g, "h_net1.fc.0.weight", 2)
    need(rows % 512 == 0, g, f"'h_net1.fc.0.weight' has {rows} rows, not 16*gf*4*4*2")
    c_dim, gf = four_c // 4, rows // 512
    need(in_dim > c_dim, g, f"INIT_STAGE_G takes {in_dim} values, not c ({c_dim}) + z")
    ups = indices(g.tensors, r"h_net1\.upsample(\d+)\..*")
    need(ups == [1, 2, 3, 4], g, f"INIT_STAGE_G has upsample{ups}, not upsample1..4 (64 px)")
    branches = 1 + len(indices(g.tensors, r"h_net([23])\..*"))
    need(
        branches == 3,
        g,
        f"{branches} branches; DM-GAN's and GR-GAN's releases have 3 (TREE.BRANCH_NUM 3)",
    )
    r_num = indices(g.tensors, r"h_net2\.residual\.(\d+)\..*")
    need(bool(r_num) and r_num == list(range(len(r_num))), g, f"residual blocks {r_num}")
    return kind(gf, in_dim - c_dim, c_dim, nef, len(r_num), branches)


def discriminator_config(d: Part) -> DConfig:
    """A D_NET's stage from its layers (s32: 128 px, s64: 256 px), DF_DIM from its first conv."""
    df = shape(d, "img_code_s16.0.module.weight_bar", 4)[0]
    keys = d.tensors
    stage = 0
    if "img_code_s32.0.module.weight_bar" in keys:
        stage = 2 if "img_code_s64.0.module.weight_bar" in keys else 1
    uncond = "UNCOND_DNET.outlogits.0.weight" in keys
    cond = "COND_DNET.outlogits.0.weight" in keys
    joint = "COND_DNET.jointConv.0.module.weight_bar"
    cond_dim = shape(d, joint, 4)[1] - 8 * df if joint in keys else None
    return DConfig(stage, df, uncond, cond, cond_dim)
