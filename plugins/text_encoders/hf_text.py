"""A generic Hugging Face text encoder loaded from any local model folder.

The folder can be anywhere on disk, relative to ``$T2I_STAGES_HOME``, or shipped inside an
installed Python package (``package: some_pkg`` + ``path: models/tiny``), which is how a pip
package can carry a small encoder. Nothing is downloaded: the folder must already hold
``config.json`` and the weights.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import (
    MissingAssetError,
    T2IError,
    TextFeatures,
    require_hf_folder,
)

from .clip_common import decode_captions, load_hf_tokenizer
from .params import HfTextParams


def resolve_model_folder(path: str, package: str | None) -> Path:
    """The local folder of a model, possibly shipped inside an installed package."""
    if package is None:
        return require_hf_folder(path, what="Hugging Face text encoder folder")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise MissingAssetError(
            f"Hugging Face text encoder: package '{package}' is not installed (pip install it), "
            f"so its folder '{path}' cannot be found"
        ) from None
    folder = Path(str(root)) / path
    return require_hf_folder(
        str(folder.resolve()), what=f"text encoder folder in package '{package}'"
    )


class HfTextEncoder(nn.Module):
    """encode_text(tokens, mask) -> TextFeatures from a Hugging Face encoder's last hidden state."""

    def __init__(self, params: HfTextParams, vocab: Any = None):
        super().__init__()
        from transformers import AutoModel

        self.params = params
        self.folder = resolve_model_folder(params.path, params.package)
        try:
            self.model = AutoModel.from_pretrained(str(self.folder), local_files_only=True)
        except Exception as exc:
            raise T2IError(
                f"Hugging Face text encoder {self.folder}: cannot load: {type(exc).__name__}: {exc}"
            ) from None
        self.tokenizer = load_hf_tokenizer(self.folder)
        self.vocab = vocab
        mode = params.ids
        if mode == "auto":
            mode = "retokenize" if vocab is not None and hasattr(vocab, "itos") else "model"
        if mode == "retokenize" and self.tokenizer is None:
            raise T2IError(
                f"Hugging Face text encoder {self.folder}: re-tokenizing needs tokenizer files in "
                "the folder (save the tokenizer with save_pretrained next to the model)"
            )
        self.mode = mode
        hidden = int(self.model.config.hidden_size)
        if not params.trainable:
            self.model.requires_grad_(False)
        self.proj = nn.Linear(hidden, params.text_dim) if params.text_dim else None
        self.text_dim = int(params.text_dim or hidden)
        special = getattr(self.tokenizer, "all_special_ids", []) if self.tokenizer else []
        self.register_buffer(
            "special_ids", torch.tensor(sorted(set(special)), dtype=torch.long), persistent=False
        )

    def _run(self, ids: torch.Tensor, attn: torch.Tensor) -> TextFeatures:
        attn = attn.to(torch.bool)
        out = self.model(input_ids=ids, attention_mask=attn.long())
        hidden = out.last_hidden_state  # (B, L, W)
        words_mask = attn & ~torch.isin(ids, self.special_ids.to(ids.device))
        pooling = self.params.pooling
        if pooling == "cls":
            sentence = hidden[:, 0]
        elif pooling == "pooler":
            if getattr(out, "pooler_output", None) is None:
                raise T2IError(f"{self.folder}: this model has no pooler; use pooling: mean")
            sentence = out.pooler_output
        elif pooling == "last":
            last = (attn.sum(1) - 1).clamp_min(0)
            sentence = hidden[torch.arange(ids.shape[0], device=ids.device), last]
        else:
            m = (words_mask if words_mask.any() else attn)[:, :, None].to(hidden.dtype)
            sentence = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        if self.proj is not None:
            hidden, sentence = self.proj(hidden), self.proj(sentence)
        words = (hidden * words_mask[:, :, None].to(hidden.dtype)).transpose(1, 2)
        return TextFeatures(words, sentence, words_mask, words_mask.sum(1))

    def encode_captions(self, captions: list[str]) -> TextFeatures:
        """Tokenize caption strings with the folder's tokenizer and encode them."""
        if self.tokenizer is None:
            raise T2IError(f"{self.folder}: no tokenizer files in the folder")
        enc = self.tokenizer(
            captions,
            padding=True,
            truncation=True,
            max_length=self.params.max_length,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        return self._run(enc["input_ids"].to(device), enc["attention_mask"].to(device))

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        mask = mask.to(torch.bool)
        if self.mode == "retokenize":
            return self.encode_captions(decode_captions(self.vocab, tokens, mask))
        return self._run(tokens, mask)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        return self.encode_text(tokens, mask)


def build_hf_text(params: HfTextParams, vocab: Any = None, **ctx: Any) -> HfTextEncoder:
    return HfTextEncoder(params, vocab=vocab)
