"""ONNX export of a text encoder whose forward is free of packing (e.g. the DAMSM RNN).

The exported graph takes ``tokens`` int64 (B, T) and ``mask`` bool (B, T) with dynamic batch
and length axes and returns ``words`` (B, D, T) and ``sentence`` (B, D).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class _TextEncoderGraph(nn.Module):
    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder.encode_text(tokens, mask)
        return out.words, out.sentence


def _name_dynamic_output_dims(path: Path) -> None:
    """Mark the outputs' batch and length dims symbolic (the LSTM shape inference freezes T)."""
    import onnx

    model = onnx.load(str(path))
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) >= 1:
            dims[0].dim_param = "batch"
        if out.name == "words" and len(dims) == 3:
            dims[2].dim_param = "T"
    onnx.save(model, str(path))


def export_text_encoder_onnx(
    encoder: nn.Module, path: str | Path, example_batch: int = 2, example_length: int = 5
) -> Path:
    """Export ``encoder`` (in eval mode) to a single-file ONNX model at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = encoder.training
    encoder.eval()
    vocab = int(getattr(encoder, "vocab_size", 2))
    tokens = torch.randint(1, max(vocab, 2), (example_batch, example_length))
    mask = torch.ones(example_batch, example_length, dtype=torch.bool)
    mask[-1, example_length // 2 :] = False
    batch, steps = torch.export.Dim("batch"), torch.export.Dim("T")
    try:
        with torch.no_grad():
            torch.onnx.export(
                _TextEncoderGraph(encoder),
                (tokens, mask),
                str(path),
                input_names=["tokens", "mask"],
                output_names=["words", "sentence"],
                dynamic_shapes={"tokens": {0: batch, 1: steps}, "mask": {0: batch, 1: steps}},
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        encoder.train(was_training)
    _name_dynamic_output_dims(path)
    return path
