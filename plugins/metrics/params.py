"""The metrics' params. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from t2i_stages.plugin import (
    MAX_CHANNELS,
    MAX_LAYERS,
    MAX_SAMPLES,
    MatcherSlot,
    Params,
)

DEFAULT_CLIP = "hf/clip-vit-base-patch32"


ExtractorName = Literal[
    "inception", "fid_inception", "imagenet_inception", "matcher", "held_out", "oracle", "random"
]
# How images reach a network's input size (t2i_stages.evaluation.extractors.RESIZES).
ResizeName = Literal["clean_bicubic", "clean_bilinear", "pil_bilinear", "torch_bilinear"]
RESIZE_HELP = (
    "clean_bicubic / clean_bilinear: clean-fid's PIL resize on float (no quantisation); "
    "pil_bilinear: PIL bilinear on the uint8 image, back to uint8 (torchvision Resize on a PIL "
    "image, scipy imresize: DM-GAN's FID and IS, GR-GAN's CMD); torch_bilinear: bilinear "
    "interpolation on float, align_corners=False (pytorch-fid, DF-GAN's tensor Resize)"
)
QuantizeName = Literal["round", "floor", "none"]


class PixelParams(Params):
    """How generated images become the pixels a metric reads (the uint8 round-trip)."""

    quantize: QuantizeName = Field(
        "round",
        description="Generated images in [-1, 1] -> [0, 255]: 'round' to uint8 (a saved PNG, the "
        "default), 'floor' (x + 1) * 127.5 cast to uint8 as the references saved their PNGs, "
        "'none' float without the round-trip (DF-GAN's in-process FID, DM-GAN's R-precision). "
        "Images read from files are uint8 already.",
    )


class HeldOutParams(Params):
    """A second matcher, pretrained like the run's but with another seed (or another config)."""

    held_out_seed: int = Field(
        1, description="Pretraining seed of the held-out matcher (cached after the first use)."
    )
    held_out_matcher: MatcherSlot | None = Field(
        None, description="Matcher config of the held-out encoder; null = the run's matcher config."
    )


class ClipScoreParams(Params):
    """Mean of max(cos(image, caption), 0) in CLIP space, times 100 (and Hessel's w = 2.5 form)."""

    clip_folder: str = Field(DEFAULT_CLIP, description="Local Hugging Face CLIP folder.")
    real_reference: bool = Field(True, description="Also score the real test images.")


class InceptionScoreParams(PixelParams):
    """exp(E KL(p(y|x) ‖ p(y))) over ``splits`` splits, mean ± std."""

    network: Literal["torchvision", "tf_inception"] = Field(
        "torchvision",
        description="'torchvision': ImageNet Inception-v3, 1000 classes, [-1, 1] input; "
        "'tf_inception': the TF graph inception-2015-12-05 that improved-gan's IS (AttnGAN, "
        "DM-GAN on COCO) used, 1008 classes without the output bias, from clean-fid's TorchScript "
        "inception-2015-12-05.pt.",
    )
    weights: str | None = Field(
        None,
        description="torchvision's inception_v3_google-0cc3c7bd.pth; null = the known asset "
        "path under $T2I_STAGES_HOME.",
    )
    inception_path: str | None = Field(
        None,
        description="network 'tf_inception': clean-fid's inception-2015-12-05.pt (file or "
        "folder); null = look under $T2I_STAGES_HOME/cleanfid/ and the temp folder.",
    )
    resize: ResizeName | None = Field(
        None, description=f"Resize to 299; null = clean_bilinear. {RESIZE_HELP}."
    )
    splits: int = Field(10, le=MAX_LAYERS, ge=1, description="Splits for the mean ± std.")


class AttributeAccuracyParams(Params):
    """Score generated shapes images with the dataset's oracle."""

    mentioned_only: bool = Field(
        True, description="Count only attributes the caption mentions (false: every attribute)."
    )
    real_reference: bool = Field(True, description="Also score the real test images.")


class RPrecisionParams(HeldOutParams, PixelParams):
    """Retrieval of each generated image's caption among ``candidates`` (1 true + others)."""

    encoder: Literal["run", "held_out", "clip"] = Field(
        "run",
        description="Which image-text encoder ranks the captions: the run's matcher (inflated: "
        "the generator was trained against it), a held-out matcher, or a local CLIP.",
    )
    clip_folder: str = Field(DEFAULT_CLIP, description="Local CLIP folder for encoder 'clip'.")
    candidates: int = Field(
        100, le=MAX_SAMPLES, ge=2, description="Captions ranked per image (1 true + others)."
    )
    folds: int = Field(10, le=MAX_LAYERS, ge=1, description="Folds for the mean ± std.")
    seed: int = Field(0, description="Seed of the mismatched-caption draws and the fold shuffle.")
    real_reference: bool = Field(
        True, description="Also score the real test images (the ceiling for this encoder)."
    )


class CmdParams(HeldOutParams, PixelParams):
    """Cross-model distance (CMD) and image-text distance (ITDis) of GR-GAN."""

    space: Literal["clip", "matcher", "held_out"] = Field(
        "clip",
        description="Joint feature space: a local CLIP folder (GR-GAN used ViT-B/32), the run's "
        "matcher, or a held-out matcher.",
    )
    clip_folder: str = Field(DEFAULT_CLIP, description="Local Hugging Face CLIP folder.")
    clip_normalize: bool = Field(
        False,
        description="Apply CLIP's mean/std to images (the released script does not: false).",
    )
    expect_vit_b32: bool = Field(
        False,
        description="Refuse a clip_folder whose config.json is not CLIP ViT-B/32 (the model "
        "GR-GAN's CMD_score.py loads; the grgan preset sets it).",
    )
    resize: ResizeName | None = Field(
        None, description=f"Resize to CLIP's input size; null = clean_bilinear. {RESIZE_HELP}."
    )
    image_scale: float = Field(
        10.0, le=1e6, gt=0, description="Image features: L2-normalised times this."
    )
    text_scale: float = Field(
        1.0, le=1e6, gt=0, description="Text features: L2-normalised times this."
    )
    real_stats: str | None = Field(
        None,
        description="An .npz (mu, sigma) for the real images (e.g. GR-GAN's image_feature.npz).",
    )
    text_stats: str | None = Field(
        None, description="An .npz (mu, sigma) for the captions (e.g. GR-GAN's sent_feature.npz)."
    )
    captions: Literal["sampled", "all"] = Field(
        "sampled",
        description="Caption set l: the caption of each evaluated image, or every caption of the "
        "evaluated test images (as GR-GAN: 5 per COCO image).",
    )
    headline: Literal["paper", "script"] = Field(
        "paper", description="Which form the 'CMD' and 'ITDis' headline numbers use."
    )
    save_stats: str | None = Field(
        None, description="Folder to write real.npz, text.npz and fake.npz (mu, sigma) into."
    )


class FidParams(HeldOutParams, PixelParams):
    """Fréchet (and kernel) distance between generated and real images in a feature space."""

    extractor: ExtractorName = Field(
        "inception",
        description="Feature space: 'inception' (clean-fid's TorchScript, gives FID/KID), "
        "'fid_inception' (pytorch-fid's FID Inception from pt_inception-2015-12-05-6726825d.pth, "
        "gives FID[fid_inception]), 'imagenet_inception' (torchvision's ImageNet Inception-v3 "
        "fed as pytorch-fid 802da39 = DM-GAN's and DF-GAN's FID code, gives "
        "FID[imagenet_inception]), 'matcher' (the run's image encoder), 'held_out' (a matcher "
        "pretrained with another seed), 'oracle' (shapes oracle's penultimate layer) or "
        "'random' (seeded random CNN, for tests).",
    )
    weights: str | None = Field(
        None,
        description="Weights file of 'fid_inception' (pt_inception-2015-12-05-6726825d.pth) or "
        "'imagenet_inception' (inception_v3_google-0cc3c7bd.pth); null = the known asset path "
        "under $T2I_STAGES_HOME (pytorch-fid/, torchvision/).",
    )
    resize: ResizeName | None = Field(
        None,
        description="Resize to the Inception's 299 px; null = the extractor's own (inception: "
        "clean_bicubic, fid_inception: torch_bilinear, imagenet_inception: pil_bilinear; the "
        f"other extractors read the native size). {RESIZE_HELP}.",
    )
    fid: bool = Field(True, description="Report the Fréchet distance.")
    kid: bool = Field(True, description="Report the kernel (KID) distance.")
    floor: bool = Field(
        False,
        description="Also report the real-vs-real floor '<FD name> floor': the Fréchet distance "
        "between the first N real train images and the first N real test images in the same "
        "space, N = the evaluated sample count (cached per dataset params, resolution, N and "
        "extractor weights).",
    )
    inception_path: str | None = Field(
        None,
        description="clean-fid's inception-2015-12-05.pt (file or folder); null = look under "
        "$T2I_STAGES_HOME/cleanfid/ and the temp folder.",
    )
    reference_stats: str | None = Field(
        None,
        description="An .npz with mu and sigma of the real set in this feature space; null = the "
        "real test images paired with the evaluated captions.",
    )
    save_reference_stats: str | None = Field(
        None, description="Write the real set's mu/sigma to this .npz (to reuse as a reference)."
    )
    kid_subsets: int = Field(
        100, le=MAX_SAMPLES, ge=1, description="KID subsets (clean-fid's num_subsets)."
    )
    kid_subset_size: int = Field(
        1000, le=MAX_SAMPLES, ge=2, description="KID subset size (clean-fid's max)."
    )
    kid_seed: int = Field(0, description="Seed of KID's subset draws.")
    random_seed: int = Field(0, description="Seed of the 'random' extractor's weights.")
    random_dim: int = Field(
        64, le=MAX_CHANNELS, ge=2, description="Feature size of the 'random' extractor."
    )


class KidParams(FidParams):
    """Kernel Inception Distance (or KD in another feature space) only."""

    fid: bool = Field(False, description="Report the Fréchet distance.")


# The judges' defaults: the fast from-scratch settings of docs/matchers.md (R-precision >= 0.9
# within 5 CPU minutes on the default shapes dataset), step-bound with no time cap so that every
# machine trains the same, complete judge, in fp32 so that bf16 and fp32 machines do too.
JUDGE_ITM: dict[str, Any] = {
    "scratch": {
        "image_size": 64,
        "patch_size": 16,
        "patch_stem": "conv",
        "vision_layers": 1,
        "text_layers": 1,
    },
    "image_pool": "avgmax",
    "text_pool": "mean",
    "region_grad": False,
    "pretrain": {
        "steps": 700,
        "max_minutes": None,
        "lr": 1.0e-3,
        "betas": [0.9, 0.999],
        "batch_size": 128,
        "gamma3": 40.0,
        "schedule": "cosine",
        "word_batch": 8,
        "word_grad": False,
        "precision": "fp32",
    },
}
JUDGE_DAMSM: dict[str, Any] = {
    "dropout": 0.0,
    "sentence": "mean",
    "small_cnn": {"image_size": 64, "arch": "pooled", "code_pool": "avgmax", "region_grad": False},
    "pretrain": {
        "steps": 2500,
        "max_minutes": None,
        "betas": [0.9, 0.999],
        "word_batch": 8,
        "word_grad": False,
        "precision": "fp32",
    },
}


class JudgeSpec(Params):
    """One held-out judge: a matcher pretrained on the dataset with its own seed, cached as a
    judge (a training run never loads it), which no generator is trained against."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Short name in the value names (R-precision[judge_<name>]).",
    )
    matcher: MatcherSlot = Field(description="The judge's matcher type and params.")
    seed: int = Field(
        description="Its pretraining seed: must differ from the other judges' and from the "
        "run's own matcher's (the evaluation refuses a judge that could be that matcher)."
    )


def default_judges() -> list[JudgeSpec]:
    return [
        JudgeSpec(name="itm", matcher=MatcherSlot(type="itm", params=JUDGE_ITM), seed=1001),
        JudgeSpec(name="damsm", matcher=MatcherSlot(type="damsm", params=JUDGE_DAMSM), seed=1002),
    ]


class JudgesParams(PixelParams):
    """R-precision and CMD in the spaces of held-out judges (an ITM and a DAMSM by default),
    with the spread between the judges."""

    judges: list[JudgeSpec] = Field(
        default_factory=default_judges,
        min_length=1,
        max_length=MAX_LAYERS,
        description="The judges (default: a from-scratch ITM, seed 1001, and a DAMSM, seed "
        "1002, with docs/matchers.md's fast settings; trained once per dataset and resolution, "
        "then cached).",
    )
    candidates: int = Field(
        100, le=MAX_SAMPLES, ge=2, description="R-precision: captions ranked per image."
    )
    folds: int = Field(10, le=MAX_LAYERS, ge=1, description="R-precision folds (mean ± std).")
    seed: int = Field(0, description="Seed of R-precision's mismatched-caption draws.")
    image_scale: float = Field(
        10.0, le=1e6, gt=0, description="CMD: image features L2-normalised times this."
    )
    text_scale: float = Field(
        1.0, le=1e6, gt=0, description="CMD: text features L2-normalised times this."
    )

    @model_validator(mode="after")
    def _distinct(self) -> JudgesParams:
        for field in ("name", "seed"):
            seen = [getattr(j, field) for j in self.judges]
            twice = sorted({v for v in seen if seen.count(v) > 1})
            if twice:
                raise ValueError(
                    f"judges: {field} {twice[0]!r} is given twice; each judge needs its own"
                )
        return self
