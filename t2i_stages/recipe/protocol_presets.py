"""The presets' data: what each paper's released evaluation fixed (``protocols`` applies it).

Every choice names the reference file and line it comes from (the mirrors' HEAD commits in
``REFERENCES``); ``[inferred]`` marks a choice the release does not show and the preset takes
from its lineage. Plain data: no torch, no plugin imports (the metric types are names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..spec import MAX_SAMPLES

ProtocolName = Literal["attngan", "dmgan", "dfgan", "grgan", "clean"]

# The reference repositories the sources below cite (file:line at these commits).
REFERENCES = {
    "AttnGAN": "taoxugit/AttnGAN@0d000e6",
    "DM-GAN": "MinfengZhu/DM-GAN@d515995",
    "DF-GAN": "tobran/DF-GAN@78f14fd",
    "GR-GAN": "BoO-18/GR-GAN@3d84ec5",
}
CLIP_B32 = "hf/clip-vit-base-patch32"
# num_samples meaning "every test image once" (the stream stops at the end of the split)
WHOLE_SPLIT = MAX_SAMPLES


@dataclass(frozen=True)
class FixedMetric:
    """One metric slot a preset fixes: the plugin, its params and where the choices come from."""

    type: str
    params: Mapping[str, Any]
    source: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"type": self.type, "params": dict(self.params), "source": self.source}
        return out | ({"note": self.note} if self.note else {})


@dataclass(frozen=True)
class Preset:
    """A paper's evaluation protocol: sample count, passes over the test split, metrics."""

    name: str
    paper: str
    num_samples: int  # WHOLE_SPLIT: every test image once
    passes: int  # passes over the test split allowed to reach num_samples (new captions each)
    samples_source: str
    metrics: tuple[FixedMetric, ...]
    notes: tuple[str, ...] = field(default=())

    def slots(self) -> list[dict[str, Any]]:
        """The metric slots as recipe data (``{type, params}``)."""
        return [{"type": m.type, "params": dict(m.params)} for m in self.metrics]

    def samples(self) -> str:
        if self.num_samples == WHOLE_SPLIT:
            return "every test image once (one pass over the test split)"
        return f"{self.num_samples} images, up to {self.passes} pass(es) over the test split"


# ------------------------------------------------------------------ shared metric choices

# DM-GAN's R-precision (code/trainer.py:467-491): DAMSM image code of the generated image as it
# leaves G (no uint8 round-trip, :467), its caption + 99 mismatched ones (:470-473), cosine,
# a hit when the true caption ranks first (:476-483), 10 folds (:485-491).
_R_DAMSM = FixedMetric(
    "r_precision",
    {"encoder": "run", "candidates": 100, "folds": 10, "quantize": "none"},
    "DM-GAN code/trainer.py:467-491 (DAMSM image code of G's float output, 1 true + 99 "
    "mismatched captions, cosine, 10 folds)",
    "the run's matcher is the DAMSM the generator was trained against, as in the papers "
    "(inflated); an imported release's matcher is the released DAMSM",
)
# CLIP-R-precision (Park et al. 2021): the same ranking by a CLIP the generator never saw.
_R_CLIP = FixedMetric(
    "r_precision",
    {"encoder": "clip", "clip_folder": CLIP_B32, "candidates": 100, "folds": 10},
    "CLIP-R-precision (Park et al., NeurIPS 2021 benchmarks): 1 true + 99 captions ranked by "
    "a separate CLIP ViT-B/32 (with CLIP's normalisation)",
    "not in the paper: a held-out encoder beside the inflated DAMSM number",
)


def _fid_torchvision_2018(source: str, resize: str, quantize: str, note: str = "") -> FixedMetric:
    """The FID the DM-GAN/DF-GAN code computes: pytorch-fid at 802da39 (2018), whose
    Inception is torchvision's ImageNet model, not the TF-FID weights."""
    return FixedMetric(
        "fid",
        {"extractor": "imagenet_inception", "resize": resize, "quantize": quantize, "kid": False},
        source,
        note,
    )


_IS_TF = FixedMetric(
    "inception_score",
    {"network": "tf_inception", "resize": "pil_bilinear", "quantize": "floor", "splits": 10},
    "DM-GAN eval/IS/coco/inception_score_coco.py:19 (TF graph inception-2015-12-05), :111-112 "
    "(scipy imresize bilinear to 299 on the uint8 PNG, float [0, 255]), :99-101 (pool3 @ softmax "
    "weights, no bias), :52-56 (10 splits); code/trainer.py:458-461 (PNG: (x + 1) * 127.5 "
    "cast to uint8, truncating)",
    "on CUB the papers used StackGAN's Inception fine-tuned on birds (a TF checkpoint this "
    "project cannot load): there the number is the ImageNet TF Inception's, not the paper's",
)

PRESETS: dict[str, Preset] = {
    "attngan": Preset(
        name="attngan",
        paper="AttnGAN (Xu et al., CVPR 2018)",
        num_samples=WHOLE_SPLIT,
        passes=1,
        samples_source="AttnGAN code/trainer.py:390 (`for _ in range(1)`: one image per test "
        "image, one pass over the split)",
        metrics=(
            FixedMetric(
                "inception_score",
                dict(_IS_TF.params),
                "AttnGAN README.md:61-62 (IS with improved-gan's inception_score on COCO, "
                "StackGAN-inception-model on CUB), code/trainer.py:423-426 (PNG: (x + 1) * 127.5 "
                "cast to uint8); preprocessing as DM-GAN eval/IS/coco/inception_score_coco.py:111",
                _IS_TF.note,
            ),
            _fid_torchvision_2018(
                "DM-GAN README.md:77-84 (AttnGAN's FID as DM-GAN measured it, with pytorch-fid "
                "at 802da39; AttnGAN's paper and code have no FID); resize and quantisation as "
                "DM-GAN's (eval/FID/fid_score.py:220-223, AttnGAN code/trainer.py:423-426)",
                "pil_bilinear",
                "floor",
                "[inferred] AttnGAN released no FID code",
            ),
            FixedMetric(
                "r_precision",
                dict(_R_DAMSM.params),
                "AttnGAN never released its R-precision code (issues taoxugit/AttnGAN#71, #91); "
                "DM-GAN code/trainer.py:467-491 is the lineage's implementation",
                "[inferred] " + _R_DAMSM.note,
            ),
            _R_CLIP,
        ),
        notes=(
            "noise: torch's global RNG in the reference (trainer.py:413); here the run's fixed "
            "noise seed",
        ),
    ),
    "dmgan": Preset(
        name="dmgan",
        paper="DM-GAN (Zhu et al., CVPR 2019)",
        num_samples=30000,
        passes=11,
        samples_source="DM-GAN code/trainer.py:419-421 (R array of 30,000; up to 11 passes over "
        "the test captions, a random caption per image each pass), :485 (stops at 30,000)",
        metrics=(
            _fid_torchvision_2018(
                "DM-GAN README.md:77 (pytorch-fid at 802da39), eval/FID/inception.py:60 "
                "(torchvision inception_v3(pretrained=True): ImageNet weights), :124-131 "
                "(bilinear align_corners=True to 299, then x * std/0.5 + (mean - 0.5)/0.5 on "
                "[0, 1]), eval/FID/fid_score.py:220-223 (torchvision Resize((299, 299)) on the "
                "PIL image, ToTensor), :209-210 (np.cov); code/trainer.py:458-461 (PNG: truncating "
                "uint8 cast)",
                "pil_bilinear",
                "floor",
                "the paper's real statistics are the validation set's (README.md:51-54, "
                "bird_val.npz / coco_val.npz): pass them as reference_stats to match; by default "
                "the real test images behind the captions are the reference",
            ),
            FixedMetric(
                "fid",
                {
                    "extractor": "fid_inception",
                    "resize": "torch_bilinear",
                    "quantize": "floor",
                    "kid": False,
                },
                "DM-GAN README.md:75-77 (the TF FID of TTUR, reported beside the PyTorch one): "
                "pytorch-fid's FID Inception (pt_inception-2015-12-05) is the TF graph's "
                "weights; its resize is bilinear to 299 on float in [0, 1]",
                "the 'TF FID' column's network in PyTorch; TTUR itself resizes inside the TF graph",
            ),
            _IS_TF,
            _R_DAMSM,
            _R_CLIP,
        ),
        notes=(
            "noise: torch's global RNG (main.py:106-111, seed 100); here the run's fixed noise "
            "seed (100 by default)",
            "the reference drops the last incomplete FID batch (fid_score.py:225, drop_last); "
            "every image is scored here",
        ),
    ),
    "dfgan": Preset(
        name="dfgan",
        paper="DF-GAN (Tao et al., CVPR 2022)",
        num_samples=30000,
        passes=10,
        samples_source="DF-GAN README.md:63 ('about 3w images from the test descriptions'), "
        "code/cfg/bird.yml:29 (sample_times 10: 10 passes over the CUB test split, 29,120 images "
        "after drop_last), code/cfg/coco.yml:29 (1 pass: all 40,448 COCO test images), "
        "code/lib/modules.py:223, code/lib/perpare.py:118-120 (batches of 32, drop_last)",
        metrics=(
            _fid_torchvision_2018(
                "DF-GAN code/models/inception.py:60 (torchvision inception_v3(pretrained=True), "
                "the same file as DM-GAN's), :124-131; code/lib/modules.py:216-219 "
                "(Normalize((-1,-1,-1), (2,2,2)) then transforms.Resize((299, 299)) on the float "
                "tensor: bilinear), :249-253 (G's float output, no uint8 round-trip), :272-273 "
                "(np.cov)",
                "torch_bilinear",
                "none",
                "the reference statistics are the test set's (code/cfg/bird.yml:30, "
                "bird_val256_FIDK0.npz): pass them as reference_stats to match",
            ),
            FixedMetric(
                "r_precision",
                dict(_R_DAMSM.params),
                "DF-GAN's release computes no R-precision; DM-GAN code/trainer.py:467-491 with "
                "DF-GAN's DAMSM (code/cfg/bird.yml TEXT.DAMSM_NAME)",
                "[inferred] " + _R_DAMSM.note,
            ),
            _R_CLIP,
        ),
        notes=(
            "no Inception Score: DF-GAN reports IS on CUB only, with StackGAN's fine-tuned "
            "Inception (README.md:69; not loadable here) and does not recommend it (README.md:73)",
            "sample count: the reference's exact counts are 29,120 (CUB) and 40,448 (COCO); set "
            "eval.num_samples to match them",
            "noise: the reference truncates z at 0.88 (code/cfg/bird.yml:26-27, "
            "code/lib/modules.py:244-246); the run's generator draws its own noise",
        ),
    ),
    "grgan": Preset(
        name="grgan",
        paper="GR-GAN (arXiv 2205.11273, 2022)",
        num_samples=30000,
        passes=1,
        samples_source="GR-GAN code/GR_trainer.py:383 (num_samples=30000), :431 (one pass), "
        ":476 (stops at 30,000)",
        metrics=(
            FixedMetric(
                "cmd",
                {
                    "space": "clip",
                    "clip_folder": CLIP_B32,
                    "expect_vit_b32": True,
                    "clip_normalize": False,
                    "image_scale": 10.0,
                    "text_scale": 1.0,
                    "captions": "all",
                    "resize": "pil_bilinear",
                    "quantize": "floor",
                    "headline": "paper",
                },
                "GR-GAN eval/CMD/CMD_score.py:254 (CLIP ViT-B/32), :193-196 (Resize((224, 224)) "
                "on the PIL image, ToTensor: [0, 1], no CLIP normalisation), :64-65 (image "
                "features L2-normalised x 10), :228 (text L2-normalised), :182-183 and :237-238 "
                "(np.cov), eval/CMD/sent_data.py:40-55 (every test caption of captions_clip.pickle: 5 per COCO image), :261-271 "
                "(the signed sum d(r,f) + d(f,l) - d(r,l)); code/GR_trainer.py:468-469 (PNG: "
                "truncating uint8 cast)",
                "both forms are reported (CMD (paper) with |.|, CMD (script) signed); the script's "
                "r and l are every COCO test image and caption (its released "
                "image_feature.npz / sent_feature.npz: pass them as real_stats / text_stats, "
                "accepted only in this space)",
            ),
            _fid_torchvision_2018(
                "GR-GAN ships no FID code (it builds on DM-GAN's): DM-GAN eval/FID/fid_score.py "
                ":220-223, eval/FID/inception.py:60, :124-131; code/GR_trainer.py:468-469",
                "pil_bilinear",
                "floor",
                "[inferred] the paper reports FID without its code",
            ),
            FixedMetric(
                "inception_score",
                dict(_IS_TF.params),
                "GR-GAN ships no IS code (README.md:37 calls CMD_score.py 'inception score'); "
                "DM-GAN eval/IS/coco/inception_score_coco.py as for DM-GAN",
                "[inferred] the paper reports IS without its code",
            ),
            _R_DAMSM,
            _R_CLIP,
        ),
        notes=(
            "GR-GAN's code has get_mis_caption but never computes R-precision; the two "
            "R-precision slots follow DM-GAN's trainer and CLIP-R-precision",
            "the CMD script drops the last incomplete batch of 64 (CMD_score.py:198-199); every "
            "image is scored here",
        ),
    ),
    "clean": Preset(
        name="clean",
        paper="clean-fid (Parmar et al., CVPR 2022) and this project's honest defaults",
        num_samples=30000,
        passes=11,
        samples_source="the count the papers compare at (30,000), with new captions on each "
        "pass over a smaller test split, as DM-GAN's code/trainer.py:421",
        metrics=(
            FixedMetric(
                "fid",
                {"extractor": "inception", "resize": "clean_bicubic", "quantize": "round"},
                "clean-fid 'clean' mode: its TorchScript inception-2015-12-05.pt, PIL bicubic on "
                "float to 299 (cleanfid/resize.py build_resizer('clean')), images as saved PNGs "
                "(rounded to uint8); KID beside FID",
            ),
            FixedMetric(
                "inception_score",
                {
                    "network": "tf_inception",
                    "resize": "clean_bicubic",
                    "quantize": "round",
                    "splits": 10,
                },
                "the TF graph's classifier (clean-fid's TorchScript file, no output bias, as "
                "improved-gan) with clean-fid's resize",
            ),
            FixedMetric(
                "r_precision",
                {"encoder": "held_out", "candidates": 100, "folds": 10},
                "DM-GAN's ranking (code/trainer.py:467-491) by a matcher the generator never saw",
                "honest: not the encoder the generator was trained against",
            ),
            _R_CLIP,
            FixedMetric(
                "cmd",
                {"space": "clip", "clip_folder": CLIP_B32, "captions": "all"},
                "GR-GAN's CMD in the script's space (eval/CMD/CMD_score.py), clean-fid's "
                "float resize",
            ),
        ),
    ),
}
