"""AttnGAN's DAMSM encoders (``text_encoder*.pth``, ``image_encoder*.pth``) as a ``damsm`` matcher.

The release is the pair ``pretrain_DAMSM.py`` saves, ``torch.save(module.state_dict())`` of
``RNN_ENCODER`` and ``CNN_ENCODER``, with the dataset's ``captions.pickle`` for the vocabulary
its embedding rows are indexed by. Sizes come from the tensors: the vocabulary (embedding rows),
the word-embedding size, nef (twice the LSTM's hidden size), LSTM or GRU (4 or 3 gate blocks).
The image encoder holds the whole Inception-v3 trunk it was trained over (``Conv2d_*``,
``Mixed_*``), so the matcher is built with ``backbone: inception_checkpoint``: the trunk's
tensors go into the run's matcher checkpoint and no ImageNet file is read.

``damsm`` alone writes a run whose checkpoint holds the matcher only, on the matching built-in
AttnGAN recipe (CUB or COCO by vocabulary size): ``train.init_from: RUN`` trains that AttnGAN
with the released DAMSM, and ``RUN/checkpoints/step_00000000/matcher.safetensors`` is a
``matcher.params.pretrain.weights`` for any recipe with the same matcher params. The ``attngan``
importer reuses the text side and the image side from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t2i_stages.plugin import ImportedRelease, KeyMap, KeyMapError, ReleaseFile, WordVocab

from .captions import is_captions_file, read_vocab
from .recipes import BUILTIN_DF, RESIZE_NOTE, VOCAB_NOTE, discriminator_slots, layout

REPO = "taoxugit/AttnGAN"

TEXT_ENCODER_KEYS = KeyMap(
    [
        (r"encoder\.weight", r"embedding.weight"),
        (r"rnn\.((?:weight|bias)_(?:ih|hh)_l0)_reverse", r"rnn.bwd.\1"),
        (r"rnn\.((?:weight|bias)_(?:ih|hh)_l0)", r"rnn.fwd.\1"),
    ]
)
"""RNN_ENCODER -> DamsmRnnEncoder (the ``damsm_rnn`` text encoder; ``text.`` inside the matcher)."""

IMAGE_ENCODER_KEYS = KeyMap(
    [
        (r"emb_features\.weight", r"region_proj.weight"),
        (r"emb_cnn_code\.(weight|bias)", r"code_proj.\1"),
        (r"((?:Conv2d|Mixed)_\w+\..+)", r"backbone.\1"),
    ]
)
"""CNN_ENCODER -> InceptionImageEncoder (``image.`` inside the matcher)."""

TRUNK_PREFIXES = ("Conv2d_", "Mixed_")


def is_text_encoder(file: ReleaseFile) -> bool:
    """An RNN_ENCODER state dict: ``encoder.weight`` and the RNN's ``rnn.*`` only."""
    keys = file.tensors
    embedding = keys.get("encoder.weight")
    return (
        embedding is not None
        and len(embedding.shape) == 2
        and "rnn.weight_ih_l0" in keys
        and all(k.startswith(("encoder.", "rnn.")) for k in keys)
    )


def is_image_encoder(file: ReleaseFile) -> bool:
    """A CNN_ENCODER state dict: its two projections (and the Inception trunk)."""
    keys = file.tensors
    return (
        "emb_features.weight" in keys
        and "emb_cnn_code.weight" in keys
        and all(k.startswith(("emb_", *TRUNK_PREFIXES)) for k in keys)
    )


@dataclass
class TextSide:
    """A DAMSM text encoder's file and the sizes read from its tensors."""

    file: ReleaseFile
    vocab_size: int
    embedding_dim: int
    nef: int
    rnn_type: str

    @property
    def params(self) -> dict[str, Any]:
        """The ``damsm_rnn`` / ``damsm`` params these sizes give."""
        return {
            "text_dim": self.nef,
            "embedding_dim": self.embedding_dim,
            "rnn_type": self.rnn_type,
        }

    def describe(self) -> str:
        return (
            f"DAMSM {self.rnn_type.upper()} text encoder ({self.vocab_size} words, embedding "
            f"{self.embedding_dim}, nef {self.nef})"
        )


def read_text_side(file: ReleaseFile) -> TextSide:
    """Sizes of an RNN_ENCODER file; a layout the framework cannot hold is a one-line error."""
    t = file.tensors
    expected = "an AttnGAN RNN_ENCODER (1 bidirectional layer: rnn.*_l0 and rnn.*_l0_reverse)"
    if "rnn.weight_hh_l0_reverse" not in t or any("_l1" in k for k in t):
        raise KeyMapError(f"{file.path}: not {expected}")
    vocab_size, embedding_dim = t["encoder.weight"].shape
    hidden = t["rnn.weight_hh_l0"].shape[1]
    gates = t["rnn.weight_ih_l0"].shape[0] // hidden
    if gates not in (3, 4):
        raise KeyMapError(f"{file.path}: rnn.weight_ih_l0 has {gates} gate blocks; {expected}")
    rnn_type = "lstm" if gates == 4 else "gru"
    return TextSide(file, int(vocab_size), int(embedding_dim), 2 * int(hidden), rnn_type)


def image_nef(file: ReleaseFile) -> int:
    """nef of a CNN_ENCODER file, which must hold its Inception trunk."""
    if not any(k.startswith(TRUNK_PREFIXES) for k in file.tensors):
        raise KeyMapError(
            f"{file.path}: holds the image encoder's projections but no Inception-v3 trunk "
            "(Conv2d_*, Mixed_*); AttnGAN's image_encoder*.pth holds the whole CNN_ENCODER"
        )
    return int(file.tensors["emb_features.weight"].shape[0])


def release_vocab(files: list[ReleaseFile], text: TextSide, family: str, hint: str) -> WordVocab:
    """The vocabulary from the one captions.pickle among ``files``, checked against ``text``."""
    found = [f for f in files if is_captions_file(f)]
    if len(found) != 1:
        what = "no captions.pickle" if not found else f"{len(found)} captions pickles"
        raise KeyMapError(
            f"{family}: {what} among the files; give the dataset's captions.pickle (its "
            f"vocabulary indexes {text.file.name}'s embedding rows): {hint}"
        )
    vocab = read_vocab(found[0].path)
    if len(vocab) != text.vocab_size:
        raise KeyMapError(
            f"{found[0].path}: has {len(vocab)} words but {text.file.name}'s embedding has "
            f"{text.vocab_size} rows; give the captions.pickle of the dataset it was trained on"
        )
    return vocab


def unknown_files(files: list[ReleaseFile], known: list[ReleaseFile], family: str) -> None:
    """A one-line error for a file that is no part of the release."""
    extra = [f for f in files if not any(f is k for k in known) and not is_captions_file(f)]
    if extra:
        raise KeyMapError(f"{extra[0].path}: not a file of the {family} release")


def text_state(text: TextSide, release: str) -> tuple[dict[str, Any], list[str]]:
    """The text encoder's tensors under the ``damsm_rnn`` names."""
    return TEXT_ENCODER_KEYS.apply(text.file.tensors, str(text.file.path), release)


def matcher_state(text: TextSide, image: ReleaseFile, release: str) -> dict[str, Any]:
    """Both encoders' tensors under the ``damsm`` matcher's names."""
    words, _ = text_state(text, release)
    pixels, _ = IMAGE_ENCODER_KEYS.apply(image.tensors, str(image.path), release)
    return {
        **{f"text.{k}": v for k, v in words.items()},
        **{f"image.{k}": v for k, v in pixels.items()},
    }


def matcher_params(text: TextSide, align_corners: bool = False) -> dict[str, Any]:
    """The released DAMSM as ``damsm`` params: trunk from the checkpoint, no pretraining, and
    the resize of the code that used it: AttnGAN's ``nn.Upsample`` passes no align_corners
    (false from torch 0.4.0), DM-GAN's passes ``align_corners=True``."""
    return {
        **text.params,
        "backbone": "inception_checkpoint",
        "resize_align_corners": align_corners,
        "pretrain": {"enabled": False},
    }


class DamsmImporter:
    """``t2i-stages import damsm text_encoder*.pth image_encoder*.pth captions.pickle``."""

    hint = "t2i-stages import damsm text_encoder200.pth image_encoder200.pth captions.pickle"

    def identify(self, files: list[ReleaseFile]) -> str | None:
        weights = [f for f in files if f.content is not None]
        if not weights or not all(is_text_encoder(f) or is_image_encoder(f) for f in weights):
            return None
        return f"AttnGAN's DAMSM encoders ({REPO})"

    def convert(self, files: list[ReleaseFile]) -> ImportedRelease:
        texts = [f for f in files if f.content is not None and is_text_encoder(f)]
        images = [f for f in files if f.content is not None and is_image_encoder(f)]
        unknown_files(files, texts + images, "DAMSM")
        if len(texts) != 1 or len(images) != 1:
            raise KeyMapError(
                f"damsm: a DAMSM matcher is one text encoder and one image encoder (got "
                f"{len(texts)} and {len(images)}) with the dataset's captions.pickle: {self.hint}"
            )
        text = read_text_side(texts[0])
        nef = image_nef(images[0])
        if nef != text.nef:
            raise KeyMapError(
                f"{images[0].path}: nef {nef}, but {text.file.name} gives {text.nef}; give the "
                "two encoders of one DAMSM"
            )
        vocab = release_vocab(files, text, "damsm", self.hint)
        where = layout(text.vocab_size)
        release = f"AttnGAN's DAMSM ({REPO}): {text.describe()}, Inception-v3 image encoder"
        recipe = {
            "extends": f"builtin:{where}/attngan.yaml",
            "name": f"damsm-{where}-import",
            "description": f"{release}, imported by t2i-stages import; the generator is untrained "
            "(the checkpoint holds the matcher only)",
            "matcher": {"type": "damsm", "params": matcher_params(text)},
            "generator": {"params": {"text_dim": nef}},
            "discriminators": discriminator_slots([64, 128, 256], BUILTIN_DF[where], nef),
        }
        return ImportedRelease(
            recipe=recipe,
            components={"matcher": matcher_state(text, images[0], release)},
            sources={"matcher": f"{text.file.path} + {images[0].path}"},
            release=release,
            vocab=vocab,
            dropped={"matcher": []},
            notes=[
                "the checkpoint holds the matcher only: `t2i-stages run RUN/import.recipe.yaml "
                "--set train.init_from=RUN` trains AttnGAN with it, and its matcher.safetensors "
                "is a matcher.params.pretrain.weights for the same matcher params",
                RESIZE_NOTE,
                VOCAB_NOTE,
            ],
        )


def build_damsm_importer(params: Any, **ctx: Any) -> DamsmImporter:
    return DamsmImporter()
