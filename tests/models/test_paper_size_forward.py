"""Paper-size models really run (shapes only, never trained): GR-GAN G and DM-GAN D256 on CPU,
and the stage-wise generator exports to ONNX with matching outputs."""

from __future__ import annotations

import pytest
import torch
from model_helpers import random_text, recipe_from_file, tiny_generator

from t2i_stages.types import TextFeatures


def test_grgan_generator_and_dmgan_d256_forward(registry):
    recipe = recipe_from_file("grgan")
    g = registry.build("generator", recipe.generator).eval()
    text = random_text(b=2, d=512, t=12, lengths=[12, 5])
    with torch.no_grad():
        out = g(torch.randn(2, 100), torch.randn(2, 100), text)
    assert [tuple(i.shape) for i in out.images] == [(2, 3, r, r) for r in (64, 128, 256)]
    assert [tuple(a.shape) for a in out.attention] == [(2, 12, 64, 64), (2, 12, 128, 128)]
    assert all(torch.isfinite(i).all() for i in out.images)
    # stage 2 sees the tiled sentence: uniform attention over the (shifted-mask) real words;
    # the paper recipe lines the mask up as the reference does (reference_mask_layout), so
    # pixel q of every image takes caption q mod 2's mask: the full caption's 12 words at even
    # columns, the padded one's 6 at odd columns (the golden import tests pin the layout)
    a = out.attention[0][1, :6]
    assert torch.allclose(a[..., 1::2], torch.full((6, 64, 32), 1 / 6))
    assert torch.allclose(a[..., 0::2], torch.full((6, 64, 32), 1 / 12))
    d_slot = recipe_from_file("dmgan").discriminators[2]
    d = registry.build("discriminator", d_slot).eval()
    with torch.no_grad():
        f = d(out.images[2])
        assert f.shape == (2, 256, 4, 4)
        assert (
            d.uncond_logits(f).shape
            == d.cond_logits(f, d.condition(random_text(d=256))).shape
            == (2,)
        )


class _Explicit(torch.nn.Module):
    """The deployment signature: explicit tensors in, every stage's image out."""

    def __init__(self, g):
        super().__init__()
        self.g = g

    def forward(self, z, eps, words, sentence, mask):
        return tuple(self.g(z, eps, TextFeatures(words, sentence, mask, mask.sum(1))).images)


def test_stagewise_generator_exports_to_onnx(registry):
    ort = pytest.importorskip("onnxruntime")
    g = registry.build("generator", tiny_generator("grgan"))
    w = _Explicit(g).eval()
    text = random_text(b=2, lengths=[7, 0])  # a fully padded caption too
    args = (
        torch.randn(2, g.z_dim),
        torch.randn(2, g.eps_dim),
        text.words,
        text.sentence,
        text.mask,
    )
    prog = torch.onnx.export(w, args, dynamo=True, external_data=False, verbose=False)
    sess = ort.InferenceSession(
        prog.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    got = sess.run(None, {i.name: a.numpy() for i, a in zip(sess.get_inputs(), args, strict=True)})
    with torch.no_grad():
        want = w(*args)
    for a, b in zip(got, want, strict=True):
        assert a.shape == tuple(b.shape)
        torch.testing.assert_close(torch.from_numpy(a), b, rtol=1e-4, atol=1e-5)
    ops = {n.op_type for n in prog.model_proto.graph.node}
    assert not any("Random" in op for op in ops)
