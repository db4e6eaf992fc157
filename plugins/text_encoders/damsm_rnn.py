"""The DAMSM bidirectional RNN text encoder (AttnGAN / DM-GAN ``RNN_ENCODER``, §5.1).

The reference feeds the LSTM through ``pack_padded_sequence``, which needs length-sorted batches
and does not export with the dynamo ONNX exporter. Here the two directions are two
unidirectional RNNs and the backward one reads each caption reversed *within its length*
(a gather with a per-row index), so padding never reaches a real word in either direction.
The result equals the packed bidirectional RNN on every real position (a test checks this),
padded positions give zero word features, and the module exports to ONNX with dynamic batch and
length axes.
"""

from __future__ import annotations

import torch
from torch import nn

from t2i_stages.plugin import TextFeatures, masked_mean

from .params import DamsmRnnParams


def reverse_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) index that reverses the first ``lengths[b]`` positions of each row, keeps the rest.

    The map is its own inverse, so the same index undoes the reversal.
    """
    t = torch.arange(steps, device=lengths.device)[None, :]
    lens = lengths[:, None]
    return torch.where(t < lens, lens - 1 - t, t)


class MaskedBiRNN(nn.Module):
    """A bidirectional single-layer RNN over padded batches without packing."""

    def __init__(self, input_size: int, hidden_size: int, rnn_type: str = "lstm"):
        super().__init__()
        cell = {"lstm": nn.LSTM, "gru": nn.GRU}[rnn_type]
        self.fwd = cell(input_size, hidden_size, num_layers=1, batch_first=True)
        self.bwd = cell(input_size, hidden_size, num_layers=1, batch_first=True)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, E), lengths (B,) -> outputs (B, T, 2H), last forward (B, H), last backward (B, H)."""
        steps = x.shape[1]
        out_f, _ = self.fwd(x)
        rev = reverse_index(lengths, steps)
        x_rev = torch.gather(x, 1, rev[:, :, None].expand(-1, -1, x.shape[2]))
        out_b_rev, _ = self.bwd(x_rev)
        hid = out_f.shape[2]
        out_b = torch.gather(out_b_rev, 1, rev[:, :, None].expand(-1, -1, hid))
        last = (lengths - 1).clamp_min(0)[:, None, None].expand(-1, 1, hid)
        last_f = torch.gather(out_f, 1, last)[:, 0]
        last_b = torch.gather(out_b_rev, 1, last)[:, 0]
        return torch.cat([out_f, out_b], dim=2), last_f, last_b


class DamsmRnnEncoder(nn.Module):
    """encode_text(tokens (B,T) int64, mask (B,T) bool) -> TextFeatures with D = text_dim."""

    def __init__(self, params: DamsmRnnParams, vocab_size: int):
        super().__init__()
        if params.text_dim % 2:
            raise ValueError(f"text_dim must be even (two directions), got {params.text_dim}")
        self.params = params
        self.text_dim = params.text_dim
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, params.embedding_dim)
        self.drop = nn.Dropout(params.dropout)
        self.rnn = MaskedBiRNN(params.embedding_dim, params.text_dim // 2, params.rnn_type)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if not params.trainable:
            self.requires_grad_(False)

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        mask = mask.to(torch.bool)
        lengths = mask.sum(dim=1)
        # ids at padded positions are irrelevant (they come after every real word in both
        # directions), but keep them in range.
        emb = self.drop(self.embedding(tokens * mask.to(tokens.dtype)))
        out, last_f, last_b = self.rnn(emb, lengths)
        words = (out * mask[:, :, None].to(out.dtype)).transpose(1, 2)  # (B, D, T)
        if self.params.sentence == "mean":
            sentence = masked_mean(words, mask[:, None, :], dim=2)
        else:
            sentence = torch.cat([last_f, last_b], dim=1) * (lengths > 0)[:, None].to(out.dtype)
        return TextFeatures(words, sentence, mask, lengths)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        return self.encode_text(tokens, mask)

    def load_reference_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load an AttnGAN/DM-GAN ``RNN_ENCODER`` state dict (``encoder.*``, ``rnn.*[_reverse]``).

        Read the .pth file with ``torch.load(path, weights_only=True)`` first.
        """
        mapped: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            if key.startswith("encoder."):
                mapped["embedding." + key[len("encoder.") :]] = value
            elif key.startswith("rnn."):
                name = key[len("rnn.") :]
                if name.endswith("_reverse"):
                    mapped["rnn.bwd." + name[: -len("_reverse")]] = value
                else:
                    mapped["rnn.fwd." + name] = value
        self.load_state_dict(mapped, strict=True)


def build_damsm_rnn(
    params: DamsmRnnParams, vocab_size: int | None = None, **ctx: object
) -> DamsmRnnEncoder:
    size = params.vocab_size or vocab_size
    if not size:
        raise ValueError(
            "the DAMSM text encoder needs a vocabulary size: set params.vocab_size or build it "
            "with vocab_size=<len(dataset.vocab)>"
        )
    return DamsmRnnEncoder(params, int(size))
