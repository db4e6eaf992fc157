"""The DAMSM text side of an AttnGAN-lineage generator release (AttnGAN, DM-GAN, DF-GAN).

AttnGAN's, DM-GAN's and DF-GAN's generators have no text side of their own: each is trained on
the text of AttnGAN's DAMSM ``RNN_ENCODER`` (DM-GAN and DF-GAN reuse AttnGAN's encoders; DF-GAN
reads only the sentence), whose embedding rows are indexed by the dataset's ``captions.pickle``. So a release is the netG with
``text_encoder*.pth`` and ``captions.pickle``, and optionally ``image_encoder*.pth`` (the DAMSM
image side, for the matching losses and R-precision; DF-GAN has no matching loss, so there it
serves R-precision only). This module takes that text side from the
files, checks it against the generator's nef, and gives what the run needs from it: the
components (the ``damsm`` matcher with the image encoder, else the ``damsm_rnn`` text encoder),
the recipe slots, and the notes. The one difference between the two families is the image
side's resize (``align_corners``): AttnGAN's ``nn.Upsample`` passes none (false from torch
0.4.0), DM-GAN's passes ``align_corners=True``, DF-GAN's ``interpolate`` passes false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t2i_stages.plugin import KeyMapError, ReleaseFile, WordVocab

from .damsm import (
    TextSide,
    image_nef,
    is_image_encoder,
    is_text_encoder,
    matcher_params,
    matcher_state,
    read_text_side,
    release_vocab,
    text_state,
)
from .recipes import RESIZE_NOTE, VOCAB_NOTE

ALIGNED_RESIZE_NOTE = (
    "DAMSM resize: align_corners true (DM-GAN's CNN_ENCODER resizes to 299 with "
    "nn.Upsample(..., align_corners=True)); matcher.params.resize_align_corners=false is "
    "AttnGAN's"
)
NO_IMAGE_NOTE = (
    "no image encoder: the released text encoder is the run's text_encoder and the recipe has "
    "no matcher (fine-tuning runs without the DAMSM losses; add image_encoder*.pth to import "
    "them)"
)
NO_IMAGE_EVAL_NOTE = (
    "no image encoder: the released text encoder is the run's text_encoder and the recipe has "
    "no matcher (the release trains with no matching loss; add image_encoder*.pth for a damsm "
    "matcher and R-precision)"
)


def damsm_files(files: list[ReleaseFile]) -> list[ReleaseFile]:
    """The DAMSM encoder files among ``files`` (text and image side)."""
    return [
        f for f in files if f.content is not None and (is_text_encoder(f) or is_image_encoder(f))
    ]


@dataclass
class DamsmSide:
    """A release's DAMSM: the text encoder, the image encoder if given, the vocabulary."""

    text: TextSide
    image: ReleaseFile | None
    vocab: WordVocab
    align_corners: bool

    @property
    def matching(self) -> bool:
        """Whether the run has the DAMSM matcher (and so its matching losses)."""
        return self.image is not None

    def components(self, release: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """The text side's checkpoint components under the framework's names, and their files."""
        if self.image is not None:
            state = matcher_state(self.text, self.image, release)
            return {"matcher": state}, {"matcher": f"{self.text.file.path} + {self.image.path}"}
        state, _ = text_state(self.text, release)
        return {"text_encoder": state}, {"text_encoder": str(self.text.file.path)}

    def slots(self) -> dict[str, Any]:
        """The recipe's ``matcher`` / ``text_encoder`` (and, without a matcher, ``eval``)."""
        if self.image is not None:
            params = matcher_params(self.text, align_corners=self.align_corners)
            return {"matcher": {"type": "damsm", "params": params}}
        return {
            "matcher": None,  # R-precision ranks with the matcher: FID and IS only
            "eval": {"metrics": [{"type": "fid"}, {"type": "inception_score"}]},
            "text_encoder": {
                "type": "damsm_rnn",
                "params": {**self.text.params, "trainable": False},
            },
        }

    def notes(self, matching_losses: bool = True) -> list[str]:
        """The import's notes; ``matching_losses`` False for a release trained without the
        DAMSM losses (DF-GAN), whose missing image encoder costs R-precision only."""
        resize = ALIGNED_RESIZE_NOTE if self.align_corners else RESIZE_NOTE
        missing = NO_IMAGE_NOTE if matching_losses else NO_IMAGE_EVAL_NOTE
        return [VOCAB_NOTE, resize if self.image is not None else missing]


def read_damsm_side(
    files: list[ReleaseFile],
    family: str,
    generator: str,
    nef: int,
    hint: str,
    align_corners: bool,
) -> DamsmSide:
    """The DAMSM text side among ``files`` for the netG named ``generator`` (which reads
    ``nef``); each missing, extra or mismatched file is a one-line error naming it."""
    texts = [f for f in files if f.content is not None and is_text_encoder(f)]
    images = [f for f in files if f.content is not None and is_image_encoder(f)]
    if not texts:
        raise KeyMapError(
            f"{family}: {generator} has no text side; add the DAMSM text encoder it was trained "
            f"with (text_encoder*.pth) and the dataset's captions.pickle: {hint}"
        )
    if len(texts) > 1 or len(images) > 1:
        raise KeyMapError(f"{family}: give one text encoder and at most one image encoder: {hint}")
    text = read_text_side(texts[0])
    vocab = release_vocab(files, text, family, hint)
    if text.nef != nef:
        raise KeyMapError(
            f"{text.file.path}: gives nef {text.nef} but {generator} reads nef {nef}; give the "
            "text encoder the generator was trained with"
        )
    for image in images:
        if image_nef(image) != nef:
            raise KeyMapError(f"{image.path}: nef {image_nef(image)}, {generator} reads {nef}")
    return DamsmSide(text, images[0] if images else None, vocab, align_corners)
