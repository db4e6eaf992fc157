"""GR-GAN's ITM (``ITM_model*.pth`` + CLIP's ``bpe_simple_vocab_16e6.txt.gz``) as an ``itm`` matcher.

``t2i-stages import itm ITM_model149.pth bpe_simple_vocab_16e6.txt.gz --out RUN`` writes a run
whose checkpoint holds the matcher (its trained MLP head); the frozen CLIP towers it was built on
go into ``RUN/clip-itm/``: a ``transformers`` CLIP folder with the converted text tower and a
tokenizer made from the BPE file, and ``rn101-visual.safetensors``, the ResNet image tower. The
folder's ViT vision tower is a one-layer placeholder that ``image_tower: rn101`` never builds
(``transformers`` has no ResNet CLIP). The matcher is set up as GR-GAN reads it
(``word_layout: grgan``, its 12 word slots, ``pixel_norm: none``, the ResNet's layer3 regions).

The ``grgan`` importer takes the same two files as the text side of GR-GAN's generator
(``itm_side``). The BPE file is OpenAI's, shipped in GR-GAN's ``CLIP/clip/`` folder and in the
``clip`` package; nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from t2i_stages.plugin import ImportedRelease, KeyMapError, ReleaseFile

from .clip_bpe import BPE_NAME, clip_tokenizer, is_bpe_file
from .itm_format import HEAD_MAP, REPO, ItmConfig, find_itm, itm_config, text_tower, visual_tower
from .layout import Part

ASSETS = "clip-itm"  # the folder inside the run
RUN = "{run}"  # the run folder in the recipe, filled in by import_release
VISUAL_FILE = "rn101-visual.safetensors"
GRGAN_WORDS = 12  # TEXT.WORDS_NUM of code/cfg/coco_GRAGN.yml
HINT = f"t2i-stages import itm ITM_model149.pth {BPE_NAME} --out RUN"
PLACEHOLDER_VISION = {
    "hidden_size": 32,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "image_size": 32,
    "patch_size": 32,
}


def is_itm_file(file: ReleaseFile) -> bool:
    return file.content is not None and find_itm(file.tensors, str(file.path)) is not None


@dataclass
class ItmSide:
    """A released ITM: its state dict, its sizes, and the BPE file its tokenizer is built from."""

    part: Part
    cfg: ItmConfig
    bpe: Path

    @cached_property
    def text(self) -> dict[str, Any]:
        """The text tower under ``transformers`` names, converted once for the checkpoint and
        the CLIP folder alike (the release's tower is 63M parameters)."""
        return text_tower(self.part, self.cfg)

    @property
    def files(self) -> set[str]:
        return {self.part.file, str(self.bpe)}

    def matcher_slot(self) -> dict[str, Any]:
        """The ``itm`` matcher as GR-GAN's trainer reads it, on the run's converted towers."""
        folder = f"{RUN}/{ASSETS}"
        return {
            "type": "itm",
            "params": {
                "path": folder,
                "image_tower": "rn101",
                "rn101_weights": f"{folder}/{VISUAL_FILE}",
                "text_dim": self.cfg.nef,
                "pixel_norm": "none",  # GR-GAN feeds the [-1, 1] images as they are
                "text_pool": "eos",  # the end token's feature, projected (CLIP's sentence)
                "image_pool": "cls",  # unused by the ResNet (its attention pool is the code)
                "ids": "auto",
                "freeze_clip": True,
                "word_layout": "grgan",
                "grgan_words": GRGAN_WORDS,
                "pretrain": {"enabled": False},
            },
        }

    def components(self) -> dict[str, Any]:
        """The matcher's whole state dict: the head, the text tower (registered twice: as
        ``clip.text_model`` and as the text side's ``text.text_model``) and the ResNet."""
        release = self.cfg.describe()
        head, _ = HEAD_MAP.apply(
            {k: v for k, v in self.part.tensors.items() if k.startswith("MLP.")},
            self.part.source,
            release,
        )
        text = self.text
        twice = {f"text.{k}": v for k, v in text.items() if k.startswith("text_model.")}
        visual = {f"rn101.{k[len('visual.') :]}": v for k, v in visual_tower(self.part).items()}
        clip = {f"clip.{k}": v for k, v in text.items()}
        return {**head, **clip, **twice, **visual}

    def write_assets(self, folder: Path) -> None:
        """``folder``: the ``transformers`` CLIP folder (text tower, tokenizer) and the
        ResNet's safetensors, which the matcher's build reads."""
        from safetensors.torch import save_file
        from transformers import CLIPConfig, CLIPModel

        tokenizer = clip_tokenizer(self.bpe, self.cfg.vocab_size)
        config = CLIPConfig(
            text_config=self.cfg.text_config(),
            vision_config=PLACEHOLDER_VISION,
            projection_dim=self.cfg.embed_dim,
        )
        model = CLIPModel(config)
        text = self.text
        missing, unexpected = model.load_state_dict(text, strict=False)
        left = [k for k in missing if not k.startswith(("vision_model.", "visual_projection."))]
        if left or unexpected:
            raise KeyMapError(
                f"{self.part.source}: the converted text tower does not fit transformers' CLIP "
                f"(missing {left[:3]}, unexpected {unexpected[:3]})"
            )
        model.save_pretrained(str(folder), safe_serialization=True)
        tokenizer.save_pretrained(str(folder))
        visual = {k: v.float().contiguous() for k, v in visual_tower(self.part).items()}
        save_file(visual, str(folder / VISUAL_FILE))
        note = {
            "converted_from": self.part.source,
            "release": self.cfg.describe(),
            "vision_model": "a one-layer placeholder: the image tower is "
            f"{VISUAL_FILE} (itm image_tower rn101); do not use image_tower clip with it",
        }
        (folder / "t2i_stages_import.json").write_text(json.dumps(note, indent=2), "utf-8")


def itm_side(files: list[ReleaseFile], family: str) -> ItmSide | None:
    """The ITM among ``files`` (with its BPE file), or None when no file holds an ITM."""
    found = [p for f in files if f.content is not None and (p := find_itm(f.tensors, str(f.path)))]
    if not found:
        return None
    if len(found) > 1:
        raise KeyMapError(
            f"import {family}: an ITM is in more than one file ({found[0].source}, "
            f"{found[1].source}); give one"
        )
    bpes = [f.path for f in files if f.content is None and is_bpe_file(f.path)]
    if len(bpes) != 1:
        what = "no" if not bpes else f"{len(bpes)}"
        raise KeyMapError(
            f"import {family}: {what} CLIP BPE vocabulary among the files; give {BPE_NAME} "
            f"(GR-GAN's CLIP/clip/ folder, or the clip package) beside {found[0].source}: {HINT}"
        )
    return ItmSide(found[0], itm_config(found[0]), bpes[0])


class ItmImporter:
    """``t2i-stages import itm ITM_model*.pth bpe_simple_vocab_16e6.txt.gz``."""

    def identify(self, files: list[ReleaseFile]) -> str | None:
        weights = [f for f in files if f.content is not None]
        if not weights or not all(is_itm_file(f) for f in weights):
            return None
        return f"GR-GAN's ITM ({REPO})"

    def convert(self, files: list[ReleaseFile]) -> ImportedRelease:
        side = itm_side(files, "itm")
        if side is None:
            raise KeyMapError(
                f"import itm: no GR-GAN ITM_MODEL (MLP.*, model.*) among the files: {HINT}"
            )
        for f in files:
            if str(f.path) not in side.files:
                raise KeyMapError(f"{f.path}: not a file of GR-GAN's ITM release: {HINT}")
        cfg = side.cfg
        recipe = {
            "extends": "builtin:grgan.yaml",
            "name": "grgan-itm-import",
            "description": f"{cfg.describe()}, imported by t2i-stages import; the generator is "
            "untrained (the checkpoint holds the matcher only)",
            "matcher": side.matcher_slot(),
            "generator": {"params": {"text_dim": cfg.nef}},
        }
        # the built-in's three Ds keep their settings; only their text size follows the ITM's
        overrides = [f"discriminators.{i}.params.text_dim={cfg.nef}" for i in range(3)]
        return ImportedRelease(
            recipe=recipe,
            components={"matcher": side.components()},
            sources={"matcher": side.part.source},
            release=cfg.describe(),
            vocab=None,  # CLIP tokenizes: the run's word vocabulary is its dataset's
            assets={ASSETS: side.write_assets},
            overrides=overrides,
            notes=[ITM_NOTE, TOKENIZER_NOTE],
        )


ITM_NOTE = (
    f"the CLIP towers are in RUN/{ASSETS}/ and the recipe names them by absolute path: after "
    "moving the run, --set matcher.params.path=... and matcher.params.rn101_weights=..."
)
TOKENIZER_NOTE = (
    "tokenizer: built from the BPE file; it gives clip.tokenize's ids for ASCII text (GR-GAN's "
    "captions are ASCII words by construction); OpenAI's ftfy clean-up of other characters is "
    "not applied"
)


def build_itm_importer(params: Any, **ctx: Any) -> ItmImporter:
    return ItmImporter()
