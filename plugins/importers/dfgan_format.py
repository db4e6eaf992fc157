r"""DF-GAN's release format (tobran/DF-GAN ``code/models/GAN.py``): key maps, fingerprints and
the config read off the tensor shapes. No torch here.

The release is ``state_epoch_%03d.pth`` as ``save_models`` writes it,
``{"model": {"netG", "netD", "netC"}, "optimizers": {...}, "epoch"}`` (``module.`` before every
key when trained with DDP), or a plain ``NetG`` state dict. NetD and NetC become one
``dfgan`` discriminator (its trunk and its ``netc`` head). The tables are in
docs/importing-dfgan-grgan.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from t2i_stages.plugin import KeyMap

from .layout import Part, indices, need, shape

REPO = "tobran/DF-GAN 78f14fd"
NETG_ANCHORS = ("GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight", "fc.weight", "to_rgb.1.weight")
NETD_ANCHORS = ("DBlocks.0.conv_r.0.weight", "conv_img.weight")
NETC_ANCHORS = ("joint_conv.0.weight", "joint_conv.2.weight")

_MLP = r"GBlocks\.(\d+)\.(fuse[12])\.(affine[01])\.fc_"
NETG_MAP = KeyMap(
    [
        (r"fc\.(weight|bias)", r"fc.\1"),
        (r"GBlocks\.(\d+)\.c1\.(weight|bias)", r"blocks.\1.conv1.\2"),
        (r"GBlocks\.(\d+)\.c2\.(weight|bias)", r"blocks.\1.conv2.\2"),
        (r"GBlocks\.(\d+)\.c_sc\.(weight|bias)", r"blocks.\1.shortcut.\2"),
        (_MLP + r"gamma\.linear1\.(weight|bias)", r"blocks.\1.\2.\3.gamma.0.\4"),
        (_MLP + r"gamma\.linear2\.(weight|bias)", r"blocks.\1.\2.\3.gamma.2.\4"),
        (_MLP + r"beta\.linear1\.(weight|bias)", r"blocks.\1.\2.\3.beta.0.\4"),
        (_MLP + r"beta\.linear2\.(weight|bias)", r"blocks.\1.\2.\3.beta.2.\4"),
        (r"to_rgb\.1\.(weight|bias)", r"to_rgb.1.\1"),
    ]
)
"""NetG -> the ``dfgan`` generator (154 keys at 64 px, 226 at 256 px, all mapped)."""

NETD_MAP = KeyMap(
    [
        (r"conv_img\.(weight|bias)", r"conv_img.\1"),
        (r"DBlocks\.(\d+)\.conv_r\.([02])\.weight", r"blocks.\1.residual.\2.weight"),
        (r"DBlocks\.(\d+)\.conv_s\.(weight|bias)", r"blocks.\1.shortcut.\2"),
        (r"DBlocks\.(\d+)\.gamma", r"blocks.\1.gamma"),
    ]
)
"""NetD -> the ``dfgan`` discriminator's trunk (22 keys at 64 px; the never-used ``conv_s`` of
blocks that keep their width is kept: ``unused_shortcuts: true``)."""

NETC_MAP = KeyMap([(r"joint_conv\.([02])\.weight", r"netc.\1.weight")])
"""NetC -> the ``dfgan`` discriminator's ``netc`` head (2 keys)."""


@dataclass(frozen=True)
class DfganConfig:
    """What the shapes say: nf (ngf), nz, cond_dim (the sentence size), imsize."""

    nf: int
    z_dim: int
    cond_dim: int
    resolution: int

    def describe(self) -> str:
        return (
            f"DF-GAN ({REPO} NetG: nf {self.nf}, z {self.z_dim}, sentence {self.cond_dim}, "
            f"{self.resolution} px)"
        )


def generator_config(g: Part) -> DfganConfig:
    """NetG's config: fc is Linear(nz, 8nf*4*4); log2(imsize)-2 GBlocks; the affine MLPs take
    [noise ; sentence] (nz + cond_dim)."""
    rows, nz = shape(g, "fc.weight", 2)
    need(rows % 128 == 0, g, f"'fc.weight' has {rows} rows, not 8*nf*4*4 for a whole nf")
    blocks = indices(g.tensors, r"GBlocks\.(\d+)\..*")
    need(blocks == list(range(len(blocks))), g, f"GBlocks {blocks} are not 0..n-1")
    _, y_dim = shape(g, "GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight", 2)
    need(y_dim > nz, g, f"the affine layers take {y_dim} values, not noise ({nz}) + sentence")
    return DfganConfig(rows // 128, nz, y_dim - nz, 4 * 2 ** len(blocks))


def discriminator_width(d: Part, c: Part | None, g: DfganConfig) -> int:
    """NetD's ndf (conv_img is Conv(3, ndf)), checked against NetG's imsize and NetC's input."""
    ndf = shape(d, "conv_img.weight", 4)[0]
    blocks = indices(d.tensors, r"DBlocks\.(\d+)\..*")
    want = g.resolution.bit_length() - 3  # log2(imsize) - 2, as NetG's GBlocks
    need(
        len(blocks) == want,
        d,
        f"{len(blocks)} DBlocks, where NetG's {g.resolution} px needs {want}",
    )
    if c is not None:
        _, joint_in, _, _ = shape(c, "joint_conv.0.weight", 4)
        need(
            joint_in == 8 * ndf + g.cond_dim,
            c,
            f"NetC takes {joint_in} channels, not 8*ndf + sentence = {8 * ndf + g.cond_dim}",
        )
    return ndf
