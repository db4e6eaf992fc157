"""DAMSM / ITM image-text matching losses (architectures.md §6.1).

Both losses score every image of a batch against every caption of the batch and apply a
cross-entropy in both directions (image -> captions and caption -> images), with the matching
pair on the diagonal. Off-diagonal pairs whose images share the class of the row's sample are
masked out (class masking), so that two captions of the same bird species are not pushed
apart. The word-region loss is vectorised over all B x B pairs instead of looping over captions
as the reference code does; padded words are excluded with the boolean word mask, which gives the
same values as slicing each caption to its length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2i_stages.plugin import ImageFeatures, TextFeatures

from .params import SentenceMatchingParams, WordRegionMatchingParams


def class_mask(
    class_ids: torch.Tensor | None, batch: int, device: torch.device
) -> torch.Tensor | None:
    """(B, B) bool: True where an off-diagonal pair shares a class (to be excluded).

    A negative class id (a dataset without classes uses -1) matches nothing.
    """
    if class_ids is None:
        return None
    ids = torch.as_tensor(class_ids, device=device).reshape(-1)
    if ids.numel() != batch:
        raise ValueError(f"class_ids has {ids.numel()} entries for a batch of {batch}")
    same = (ids[:, None] == ids[None, :]) & (ids >= 0)[:, None]  # negative id = no class
    return same & ~torch.eye(batch, dtype=torch.bool, device=device)


def _bidirectional_ce(
    logits: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CE over captions for each image (rows) and over images for each caption (columns)."""
    if mask is not None:
        logits = logits.masked_fill(mask, torch.finfo(logits.dtype).min)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, labels), F.cross_entropy(logits.t(), labels)


def sentence_scores(code: torch.Tensor, sentence: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(B_img, B_cap) cosine similarities of global image codes and sentence vectors."""
    c = code / code.norm(dim=1, keepdim=True).clamp_min(eps)
    s = sentence / sentence.norm(dim=1, keepdim=True).clamp_min(eps)
    return c @ s.t()


def sentence_loss(
    code: torch.Tensor,
    sentence: torch.Tensor,
    class_ids: torch.Tensor | None = None,
    gamma3: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """S0 (image -> captions) and S1 (caption -> images) of §6.1.7."""
    logits = gamma3 * sentence_scores(code, sentence)
    return _bidirectional_ce(logits, class_mask(class_ids, logits.shape[0], logits.device))


def word_region_scores(
    regions: torch.Tensor,
    words: torch.Tensor,
    mask: torch.Tensor,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    eps: float = 1e-8,
) -> torch.Tensor:
    """(B_img, B_cap) scores R(image j, caption i) = log Σ_t exp(γ2 cos(c_t, e_t)) (§6.1.1-5).

    ``regions`` (B, D, R) or (B, D, h, w); ``words`` (B, D, T); ``mask`` (B, T) True = real word.
    A caption without any real word scores 0 against every image.
    """
    if regions.dim() == 4:
        regions = regions.flatten(2)
    mask = mask.to(torch.bool)
    neg = torch.finfo(words.dtype).min
    # s[j, i, t, r] = e_{i,t} . v_{j,r}
    s = torch.einsum("idt,jdr->jitr", words, regions)
    # softmax over the caption's real words, per region
    s = s.masked_fill(~mask[None, :, :, None], neg).softmax(dim=2)
    # softmax over regions with sharpness γ1, per word
    alpha = (gamma1 * s).softmax(dim=3)
    context = torch.einsum("jitr,jdr->jidt", alpha, regions)  # (Bj, Bi, D, T)
    e = words[None]  # (1, Bi, D, T)
    cos = (context * e).sum(2) / (context.norm(dim=2) * e.norm(dim=2)).clamp_min(eps)  # (Bj, Bi, T)
    score = (gamma2 * cos).masked_fill(~mask[None], neg).logsumexp(dim=2)
    has_words = mask.any(dim=1)[None, :]
    return torch.where(has_words, score, torch.zeros_like(score))


def word_region_loss(
    regions: torch.Tensor,
    words: torch.Tensor,
    mask: torch.Tensor,
    class_ids: torch.Tensor | None = None,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    gamma3: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """W0 (image -> captions) and W1 (caption -> images) of §6.1.6."""
    logits = gamma3 * word_region_scores(regions, words, mask, gamma1, gamma2)
    return _bidirectional_ce(logits, class_mask(class_ids, logits.shape[0], logits.device))


class _MatchingLoss(nn.Module):
    """``loss(image_features, text, class_ids) -> scalar``: the sum of the chosen directions."""

    role = "matching"

    def __init__(self, params: SentenceMatchingParams | WordRegionMatchingParams):
        super().__init__()
        self.params = params
        self.directions = list(dict.fromkeys(params.directions))

    def terms(
        self,
        image_features: ImageFeatures,
        text: TextFeatures,
        class_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:  # pragma: no cover - each loss defines it
        raise NotImplementedError

    def forward(
        self,
        image_features: ImageFeatures,
        text: TextFeatures,
        class_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        terms = self.terms(image_features, text, class_ids)
        return sum(terms[d] for d in self.directions)


class SentenceMatchingLoss(_MatchingLoss):
    """Callable as ``loss(image_features, text, class_ids) -> scalar`` (S0 + S1 by default)."""

    def terms(
        self,
        image_features: ImageFeatures,
        text: TextFeatures,
        class_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Both directions separately (for logging): {'image_to_text': S0, 'text_to_image': S1}."""
        ids = class_ids if self.params.class_masking else None
        s0, s1 = sentence_loss(image_features.code, text.sentence, ids, self.params.gamma3)
        return {"image_to_text": s0, "text_to_image": s1}


class WordRegionMatchingLoss(_MatchingLoss):
    """Callable as ``loss(image_features, text, class_ids) -> scalar`` (W0 + W1 by default)."""

    def terms(
        self,
        image_features: ImageFeatures,
        text: TextFeatures,
        class_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Both directions separately (for logging): {'image_to_text': W0, 'text_to_image': W1}."""
        p = self.params
        ids = class_ids if p.class_masking else None
        w0, w1 = word_region_loss(
            image_features.regions, text.words, text.mask, ids, p.gamma1, p.gamma2, p.gamma3
        )
        return {"image_to_text": w0, "text_to_image": w1}


def build_sentence_matching(params: SentenceMatchingParams, **ctx) -> SentenceMatchingLoss:
    return SentenceMatchingLoss(params)


def build_word_region_matching(params: WordRegionMatchingParams, **ctx) -> WordRegionMatchingLoss:
    return WordRegionMatchingLoss(params)
