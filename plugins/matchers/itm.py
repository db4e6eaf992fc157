"""GR-GAN's image-text matcher (ITM, §5.3) on ``transformers.CLIPModel``.

Two settings:
- ``path`` set: a pretrained CLIP from a local folder, frozen, with a trainable projection
  head (the paper's setting). The folder's tokenizer encodes the captions.
- ``path`` null: a tiny CLIP (``scratch``) trained from scratch with the head, on the dataset's
  word-level ids.

Difference from the paper: GR-GAN uses CLIP's ResNet-101 image tower and takes its layer3 map
(14x14 at 224 px) as the regions. ``transformers`` only provides ViT towers, so here the regions
are the ViT patch tokens of ``region_layer`` (ViT-B/16 at 224 px gives the same 14x14 grid) and the
global code is CLIP's projected pooled (CLS) embedding instead of the attention-pool output.
``image_tower: rn101`` restores the paper's image side: OpenAI's ResNet tower, implemented in
``openai_rn101`` and read from ``RN101.pt`` without executing it (the text tower and tokenizer
still come from ``path`` or the scratch model).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import (
    ImageFeatures,
    Matcher,
    TextFeatures,
    masked_mean,
    require_asset,
)
from t2i_stages.plugins.common.layers import follow_memory_format
from t2i_stages.plugins.text_encoders.clip_common import (
    build_clip,
    make_text_side,
)

from .openai_rn101 import ModifiedResNet, read_rn101_weights
from .params import ItmParams
from .resize import resize_images

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ItmMatcher(Matcher):
    """CLIP towers + the ITM head: sentence/word features and a code plus patch regions."""

    def __init__(self, params: ItmParams, vocab_size: int | None = None, vocab: Any = None):
        super().__init__()
        self.params = params
        self.pretrain = params.pretrain
        clip, tokenizer, folder = build_clip(params.path, params.scratch, vocab_size)
        self.folder = folder
        self.clip = clip
        grgan = params.grgan_words if params.word_layout == "grgan" else None
        self.text = make_text_side(
            clip, tokenizer, params.ids, folder is not None, vocab, params.max_length, grgan
        )
        cfg = clip.config
        proj, tw, vw = (
            cfg.projection_dim,
            cfg.text_config.hidden_size,
            cfg.vision_config.hidden_size,
        )
        d = int(params.text_dim or proj)
        self.text_dim = d
        self.image_size = int(cfg.vision_config.image_size)
        self.grid = self.image_size // int(cfg.vision_config.patch_size)
        freeze = params.freeze_clip if params.freeze_clip is not None else folder is not None
        if freeze:
            clip.requires_grad_(False)
        self.frozen = freeze
        self.rn101: ModifiedResNet | None = None
        region_in, code_in = vw, proj
        if params.image_tower == "rn101":
            weights = require_asset("clip-rn101", params.rn101_weights)
            self.rn101 = ModifiedResNet.from_state_dict(read_rn101_weights(weights))
            self.rn101.eval().requires_grad_(False)
            del clip.vision_model, clip.visual_projection  # unused: the ResNet replaces them
            self.image_size = self.rn101.input_resolution
            region_in, code_in = self.rn101.region_channels, self.rn101.output_dim
        # the trainable head (GR-GAN's "MLP", §5.3)
        self.region_proj = nn.Conv2d(region_in, d, 1, bias=False)
        self.code_proj = nn.Linear(code_in, d)
        self.sentence_proj = nn.Linear(proj, d)
        self.word_proj = nn.Linear(tw, d)
        self.word_norm = nn.LayerNorm(d, eps=1e-12)
        nn.init.uniform_(self.region_proj.weight, -0.1, 0.1)
        nn.init.uniform_(self.code_proj.weight, -0.1, 0.1)
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)

    def train(self, mode: bool = True) -> ItmMatcher:
        super().train(mode)
        if self.frozen:
            self.clip.eval()
        if self.rn101 is not None:
            self.rn101.eval()
        return self

    def is_frozen_buffer(self, name: str) -> bool:
        return name.startswith("rn101.") or (self.frozen and name.startswith(("clip.", "text.")))

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        return self._text_features(*self.text(tokens, mask))

    def encode_captions(self, captions: list[str]) -> TextFeatures:
        """Encode caption strings with the folder's tokenizer (pretrained CLIP only)."""
        return self._text_features(*self.text.encode_captions(captions))

    def _text_features(
        self, hidden: torch.Tensor, mask: torch.Tensor, eos: torch.Tensor
    ) -> TextFeatures:
        if self.params.text_pool == "mean":
            eos = masked_mean(hidden, mask[:, :, None], dim=1)
        sentence = self.sentence_proj(self.clip.text_projection(eos))
        words = self.word_norm(self.word_proj(hidden))
        if self.params.word_layout != "grgan":  # GR-GAN keeps the padded slots' features
            words = words * mask[:, :, None].to(words.dtype)
        words = words.transpose(1, 2)
        return TextFeatures(words, sentence, mask, mask.sum(1))

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        x = resize_images(images, self.image_size)
        if self.params.pixel_norm == "clip":
            x = ((x + 1) / 2 - self.pixel_mean) / self.pixel_std
        if self.rn101 is not None:
            pooled, layer3 = self.rn101(x)  # (B, out), (B, 1024, 14, 14) for RN101 at 224 px
            return ImageFeatures(self.region_proj(layer3).flatten(2), self.code_proj(pooled))
        out = self.clip.vision_model(pixel_values=x, output_hidden_states=True)
        tokens = out.hidden_states[self.params.region_layer][:, 1:]  # (B, N, W), CLS dropped
        b, n, w = tokens.shape
        grid = tokens.transpose(1, 2).reshape(b, w, self.grid, self.grid)
        grid = follow_memory_format(grid, x)  # channels-last when the images are
        regions = self.region_proj(grid if self.params.region_grad else grid.detach()).flatten(2)
        pooled = out.pooler_output
        if self.params.image_pool != "cls":
            patches = out.last_hidden_state[:, 1:]
            pooled = patches.mean(1)
            if self.params.image_pool == "avgmax":
                pooled = pooled + patches.amax(1)
            pooled = self.clip.vision_model.post_layernorm(pooled)
        code = self.code_proj(self.clip.visual_projection(pooled))
        return ImageFeatures(regions, code)


def build_itm(
    params: ItmParams, vocab_size: int | None = None, vocab: Any = None, **ctx: Any
) -> ItmMatcher:
    return ItmMatcher(params, vocab_size=vocab_size, vocab=vocab)
