"""``masked_mean`` exports its masked sum as a batched MatMul, so that ONNX Runtime's CPU gives a
row the same features alone as in a batch (what lets the server run a lone request as one row),
while eager PyTorch keeps the plain sum bit for bit."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from t2i_stages.masking import masked_mean


class Pool(torch.nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, :, None] if self.dim == 1 else mask[:, None, :]
        return masked_mean(values, m, dim=self.dim)


def _inputs(dim: int, b: int = 5, t: int = 11, d: int = 64):
    g = torch.Generator().manual_seed(dim)
    shape = (b, t, d) if dim == 1 else (b, d, t)
    values = torch.randn(shape, generator=g)
    mask = torch.rand(b, t, generator=g) > 0.3
    mask[-1] = False  # a fully padded caption: zeros, not NaN
    return values, mask


@pytest.mark.parametrize("dim", [1, 2])
def test_eager_masked_mean_is_the_plain_masked_sum(dim):
    values, mask = _inputs(dim)
    m = (mask[:, :, None] if dim == 1 else mask[:, None, :]).float()
    want = (values * m).sum(dim=dim) / m.sum(dim=dim).clamp(min=1.0)
    assert torch.equal(Pool(dim)(values, mask), want)


@pytest.mark.parametrize("dim", [1, 2])
def test_the_export_is_a_matmul_and_a_row_alone_equals_it_batched(dim, tmp_path):
    values, mask = _inputs(dim)
    path = tmp_path / "pool.onnx"
    torch.onnx.export(
        Pool(dim),
        (values, mask),
        str(path),
        input_names=["values", "mask"],
        output_names=["mean"],
        dynamic_axes={"values": {0: "b"}, "mask": {0: "b"}, "mean": {0: "b"}},
        dynamo=False,
    )
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "MatMul" in ops
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    v, m = values.numpy(), mask.numpy()
    batched = sess.run(None, {"values": v, "mask": m})[0]
    np.testing.assert_allclose(batched, Pool(dim)(values, mask).numpy(), atol=1e-6)
    assert np.all(batched[-1] == 0)
    for i in range(v.shape[0]):  # bit for bit, alone and in the batch
        alone = sess.run(None, {"values": v[i : i + 1], "mask": m[i : i + 1]})[0]
        assert np.array_equal(alone[0], batched[i]), i
