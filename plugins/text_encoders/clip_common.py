"""Shared CLIP plumbing for the ``clip_text`` encoder and the ``itm`` matcher.

A CLIP model comes either from a local Hugging Face folder (never a download) or from a tiny
configuration trained from scratch. Captions reach it in one of three ways:

- ``word_level``: the dataset's word ids (from-scratch models). Each caption is wrapped as
  ``[BOS, w_1 .. w_L, EOS, 0 ..]`` with two extra ids appended after the dataset vocabulary, and
  the word features are read back at exactly the input positions.
- ``model``: the dataset was tokenized with this model's own tokenizer (BOS/EOS included).
- ``retokenize``: the dataset's word ids are decoded with its vocabulary (``vocab`` in the build
  context) and tokenized again with the tokenizer in the local folder (the paper's setting with
  a pretrained CLIP and a word-level dataset).

The sentence vector is the final-layer feature at the EOS position, as in CLIP; the word
features are the final-layer features of the real (non-special) tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import (
    T2IError,
    require_hf_folder,
)
from t2i_stages.plugins.common.layers import DownBlock

from .params import IdsMode, TinyClipConfig


def decode_captions(vocab: Any, tokens: torch.Tensor, mask: torch.Tensor) -> list[str]:
    """Turn a batch of dataset word ids back into caption strings with the dataset's vocab."""
    if vocab is None:
        raise T2IError(
            "re-tokenizing captions for a pretrained Hugging Face model needs the dataset "
            "vocabulary: build the component with vocab=<dataset.vocab>"
        )
    out = []
    for ids, m in zip(tokens.tolist(), mask.tolist(), strict=True):
        kept = [i for i, keep in zip(ids, m, strict=True) if keep]
        if hasattr(vocab, "decode"):
            out.append(vocab.decode(kept))
        else:  # a plain list of words
            out.append(" ".join(str(vocab[i]) for i in kept))
    return out


def choose_ids_mode(mode: IdsMode, pretrained: bool, vocab: Any) -> str:
    """Resolve ``auto``: word ids for scratch models; model ids or re-tokenizing for pretrained."""
    if mode != "auto":
        return mode
    if not pretrained:
        return "word_level"
    if vocab is not None and hasattr(vocab, "itos"):  # a word-level vocabulary
        return "retokenize"
    return "model"


def load_hf_tokenizer(folder: Path) -> Any:
    """The tokenizer saved in a local model folder, or None when the folder has none."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # no tokenizer files in the folder
        return None


def build_clip(
    path: str | None, tiny: TinyClipConfig, vocab_size: int | None
) -> tuple[nn.Module, Any, Path | None]:
    """A ``transformers.CLIPModel`` from a local folder, or a tiny one from scratch.

    Returns (model, tokenizer or None, resolved folder or None). For a scratch model the text
    vocabulary is ``vocab_size + 2`` (BOS = vocab_size, EOS = vocab_size + 1, pad = 0).
    """
    from transformers import CLIPConfig, CLIPModel

    if path:
        folder = require_hf_folder(path, what="CLIP model folder")
        model = CLIPModel.from_pretrained(str(folder), local_files_only=True)
        return model, load_hf_tokenizer(folder), folder
    if not vocab_size:
        raise T2IError(
            "a CLIP trained from scratch needs the dataset vocabulary size: build it with "
            "vocab_size=<len(dataset.vocab)> or give a pretrained folder in 'path'"
        )
    v = int(vocab_size)
    text = {
        "vocab_size": v + 2,
        "hidden_size": tiny.text_width,
        "intermediate_size": tiny.text_width * tiny.mlp_ratio,
        "num_hidden_layers": tiny.text_layers,
        "num_attention_heads": tiny.text_heads,
        "max_position_embeddings": tiny.max_words + 2,
        "bos_token_id": v,
        "eos_token_id": v + 1,
        "pad_token_id": 0,
    }
    vision = {
        "hidden_size": tiny.vision_width,
        "intermediate_size": tiny.vision_width * tiny.mlp_ratio,
        "num_hidden_layers": tiny.vision_layers,
        "num_attention_heads": tiny.vision_heads,
        "image_size": tiny.image_size,
        "patch_size": tiny.patch_size,
    }
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=tiny.projection_dim)
    model = CLIPModel(config)
    if tiny.patch_stem == "conv":
        model.vision_model.embeddings.patch_embedding = ConvPatchStem(
            tiny.patch_size, tiny.stem_width, tiny.vision_width
        )
    return model, None, None


class ConvPatchStem(nn.Sequential):
    """A convolutional stem in place of ViT's patch embedding ("early convolutions help
    transformers see better"): image (B, 3, s, s) -> patch grid (B, width, s/p, s/p)."""

    def __init__(self, patch_size: int, stem_width: int, width: int):
        steps = patch_size.bit_length() - 1
        if patch_size < 2 or 2**steps != patch_size:
            raise T2IError(f"patch_stem 'conv' needs a power-of-two patch_size, got {patch_size}")
        chans = [3] + [stem_width * 2**i for i in range(steps)]
        super().__init__(
            *(DownBlock(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)),
            nn.Conv2d(chans[-1], width, 1),
        )

    @property
    def weight(self) -> torch.Tensor:
        """CLIP's embeddings read ``patch_embedding.weight.dtype`` to cast the pixels."""
        return self[-1].weight


def _special_ids(model: nn.Module, tokenizer: Any) -> list[int]:
    ids = set()
    if tokenizer is not None:
        ids.update(int(i) for i in getattr(tokenizer, "all_special_ids", []) or [])
    cfg = model.config.text_config
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(cfg, name, None)
        if value is not None:
            ids.add(int(value))
    return sorted(ids)


class ClipTextSide(nn.Module):
    """Runs a CLIP text tower on captions given in any of the three id modes.

    ``forward(tokens, mask)`` -> (token features (B, L, W) after the final layer norm,
    word mask (B, L) bool, EOS feature (B, W)).
    """

    def __init__(
        self,
        text_model: nn.Module,
        clip_config: Any,
        mode: str,
        tokenizer: Any = None,
        vocab: Any = None,
        max_length: int = 77,
        special_ids: Sequence[int] = (),
        grgan_words: int | None = None,
    ):
        super().__init__()
        if mode == "retokenize" and tokenizer is None:
            raise T2IError(
                "re-tokenizing captions needs a tokenizer in the pretrained model folder "
                "(tokenizer.json or vocab/merges files saved with save_pretrained)"
            )
        self.text_model = text_model
        self.mode = mode
        self.tokenizer = tokenizer
        self.vocab = vocab
        cfg = clip_config.text_config
        self.bos_id = int(cfg.bos_token_id) if cfg.bos_token_id is not None else 0
        self.eos_id = int(cfg.eos_token_id) if cfg.eos_token_id is not None else 0
        self.max_length = min(int(max_length), int(cfg.max_position_embeddings))
        self.grgan_words = grgan_words
        if grgan_words is not None and grgan_words >= self.max_length:
            raise T2IError(
                f"word_layout grgan: grgan_words {grgan_words} must be below the tower's "
                f"{self.max_length} positions (the start token takes one)"
            )
        self.register_buffer(
            "special_ids", torch.tensor(list(special_ids), dtype=torch.long), persistent=False
        )

    def _word_level(self, tokens: torch.Tensor, mask: torch.Tensor):
        b, t = tokens.shape
        if t + 2 > self.text_model.config.max_position_embeddings:
            raise T2IError(
                f"captions of {t} word positions do not fit a CLIP text tower with "
                f"{self.text_model.config.max_position_embeddings} positions (max_words + 2); "
                "raise max_words in the matcher/encoder params"
            )
        lengths = mask.sum(1)
        ids = torch.zeros(b, t + 2, dtype=torch.long, device=tokens.device)
        ids[:, 0] = self.bos_id
        ids[:, 1 : t + 1] = tokens * mask
        ids.scatter_(1, (lengths + 1)[:, None], self.eos_id)
        attn = torch.arange(t + 2, device=tokens.device)[None, :] <= (lengths + 1)[:, None]
        hidden = self.text_model(input_ids=ids, attention_mask=attn.long()).last_hidden_state
        eos = hidden[torch.arange(b, device=tokens.device), lengths + 1]
        return hidden[:, 1 : t + 1], mask, eos

    def _model_ids(self, ids: torch.Tensor, attn: torch.Tensor):
        attn = attn.to(torch.bool)
        if self.grgan_words is not None:
            return self._grgan_slots(ids, attn)
        hidden = self.text_model(input_ids=ids, attention_mask=attn.long()).last_hidden_state
        last = (attn.sum(1) - 1).clamp_min(0)
        eos = hidden[torch.arange(ids.shape[0], device=ids.device), last]
        special = torch.isin(ids, self.special_ids.to(ids.device))
        return hidden, attn & ~special, eos

    def _grgan_slots(self, ids: torch.Tensor, attn: torch.Tensor):
        """GR-GAN's reading of the tower (``GR_trainer``): ``clip.tokenize`` pads every caption
        with id 0 to the context length and the tower runs with its causal mask only; the words
        are positions 1..grgan_words as they come out (end token and padding included), the
        mask is True where those positions hold a non-padding token."""
        b, n = ids.shape
        length = max(n, self.max_length)
        padded = ids.new_zeros(b, length)
        padded[:, :n] = ids * attn
        hidden = self.text_model(input_ids=padded).last_hidden_state
        last = (attn.sum(1) - 1).clamp_min(0)  # the end token: the last attended position
        eos = hidden[torch.arange(b, device=ids.device), last]
        slots = slice(1, self.grgan_words + 1)
        return hidden[:, slots], padded[:, slots] != 0, eos

    def encode_captions(self, captions: list[str]):
        """Tokenize caption strings with the folder's tokenizer and run the tower."""
        if self.tokenizer is None:
            raise T2IError("this CLIP text tower has no tokenizer (a scratch model takes word ids)")
        device = next(self.text_model.parameters()).device
        enc = self.tokenizer(
            captions,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return self._model_ids(enc["input_ids"].to(device), enc["attention_mask"].to(device))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor):
        mask = mask.to(torch.bool)
        if self.mode == "word_level":
            return self._word_level(tokens, mask)
        if self.mode == "model":
            return self._model_ids(tokens, mask)
        return self.encode_captions(decode_captions(self.vocab, tokens, mask))


def make_text_side(
    model: nn.Module,
    tokenizer: Any,
    ids_mode: IdsMode,
    pretrained: bool,
    vocab: Any,
    max_length: int,
    grgan_words: int | None = None,
) -> ClipTextSide:
    mode = choose_ids_mode(ids_mode, pretrained, vocab)
    return ClipTextSide(
        model.text_model,
        model.config,
        mode,
        tokenizer=tokenizer,
        vocab=vocab,
        max_length=max_length,
        special_ids=_special_ids(model, tokenizer),
        grgan_words=grgan_words,
    )
