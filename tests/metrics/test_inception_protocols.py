"""The protocol presets' Inception networks, resizes and pixel round-trips, on randomly
initialised weights saved where the real files would be (the real ones are offline assets):
they build from the local file, give 2048-d features, fail by name when the file is absent, and
the known pitfalls (RGB order, value range, the uint8 round-trip) are pinned."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from t2i_stages.assets import MissingAssetError
from t2i_stages.evaluation.extractors import ImageExtractor, resize_images
from t2i_stages.evaluation.inceptions import (
    PYTORCH_FID_FILE,
    FidInceptionExtractor,
    ImageNetInceptionExtractor,
    TFInceptionClassifier,
    reference_normalise,
)
from t2i_stages.evaluation.samples import EvalBatch, quantize_images
from t2i_stages.evaluation.slots import make_slot
from t2i_stages.plugins.metrics.fid import batch_features


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory) -> Path:
    """A randomly initialised FID Inception (torchvision's blocks, 1008 classes, no aux head:
    the key set of pytorch-fid's file) saved as the pt_inception file."""
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(
        weights=None, num_classes=1008, aux_logits=False, init_weights=True
    )
    path = tmp_path_factory.mktemp("pytorch-fid") / PYTORCH_FID_FILE
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory) -> Path:
    """A randomly initialised torchvision Inception-v3 (1000 classes, aux head) as its file."""
    torch.manual_seed(1)
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    path = tmp_path_factory.mktemp("torchvision") / "inception_v3_google-0cc3c7bd.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def fid_inception(fid_weights) -> FidInceptionExtractor:
    return FidInceptionExtractor("cpu", fid_weights)


def _first_conv_input(module: torch.nn.Module, run) -> torch.Tensor:
    """What the network's first convolution is fed while ``run()`` runs."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    try:
        run()
    finally:
        handle.remove()
    return seen[0]


def test_the_fid_inception_builds_from_the_local_file_and_gives_2048_features(
    fid_inception, fid_weights, blobs
):
    feats = fid_inception.features(blobs(2, seed=0, size=32))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
    assert not np.allclose(feats[0], feats[1])
    desc = fid_inception.describe(32)
    assert PYTORCH_FID_FILE in desc["network"] and "2x - 1" in desc["input_range"]
    assert "32 -> 299" in desc["resizer"] and "align_corners=False" in desc["resizer"]
    import hashlib

    assert desc["weights_sha256"] == hashlib.sha256(fid_weights.read_bytes()).hexdigest()


def test_a_missing_pytorch_fid_file_is_one_line_naming_it_and_its_place(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("T2I_STAGES_HOME", str(home))
    with pytest.raises(MissingAssetError) as err:
        FidInceptionExtractor("cpu")
    msg = str(err.value)
    assert "\n" not in msg and PYTORCH_FID_FILE in msg
    assert str(home / "pytorch-fid" / PYTORCH_FID_FILE) in msg
    assert "github.com/mseitzer/pytorch-fid" in msg and "nothing is downloaded" in msg


def test_the_fid_metric_checks_the_pytorch_fid_file_when_it_is_built(
    registry, tmp_path, monkeypatch
):
    monkeypatch.setenv("T2I_STAGES_HOME", str(tmp_path / "home"))
    slot = make_slot("fid", {"extractor": "fid_inception"}, registry)
    with pytest.raises(MissingAssetError, match=PYTORCH_FID_FILE):
        registry.build("metric", slot, device="cpu")


def test_weights_of_another_network_are_refused_by_name(imagenet_weights, tmp_path):
    wrong = tmp_path / PYTORCH_FID_FILE
    wrong.write_bytes(imagenet_weights.read_bytes())  # 1000 classes, aux head: not FID's
    with pytest.raises(Exception, match="not pytorch-fid's FID Inception weights") as err:
        FidInceptionExtractor("cpu", wrong)
    assert "\n" not in str(err.value) and str(wrong) in str(err.value)


def test_value_range_generated_floats_reach_the_fid_inception_as_they_left_g(fid_inception):
    """pytorch-fid: [0, 1] scaled to [-1, 1]. Without the uint8 round-trip (DF-GAN) and at
    the network's own 299 px, G's [-1, 1] output is exactly what the first layer sees; rounded
    to uint8 it is within half a level; the wrong range (the [0, 1] tensor fed as pixels) is
    not."""
    torch.manual_seed(0)
    g = torch.rand(1, 3, 299, 299) * 2 - 1  # a generated image in [-1, 1]
    batch = EvalBatch(
        fake=quantize_images(g, "round"), real=quantize_images(g, "round"),
        tokens=torch.zeros(1, 1, dtype=torch.long), mask=torch.ones(1, 1, dtype=torch.bool),
        captions=[""], class_ids=torch.tensor([-1]), attributes=None, indices=[0],
        fake_float=g,
    )  # fmt: skip
    first = fid_inception.model.blocks[0][0]
    seen = _first_conv_input(first, lambda: fid_inception.features(batch.pixels("fake", "none")))
    assert torch.allclose(seen, g, atol=1e-6)
    seen = _first_conv_input(first, lambda: fid_inception.features(batch.pixels("fake", "round")))
    assert (seen - g).abs().max() <= 1 / 255 + 1e-6
    wrong = _first_conv_input(first, lambda: fid_inception.features((g + 1) / 2))
    assert wrong.max() < -0.99  # [0, 1] taken for [0, 255]: everything near black


def test_value_range_the_dm_gan_inception_sees_the_2018_normalisation(imagenet_weights, blobs):
    ex = ImageNetInceptionExtractor("cpu", imagenet_weights)
    assert ex.resize_method == "pil_bilinear"  # DM-GAN fid_score.py: Resize on the PIL image
    white_black = torch.zeros(2, 3, 299, 299, dtype=torch.uint8)
    white_black[0] = 255
    seen = _first_conv_input(ex.net.Conv2d_1a_3x3, lambda: ex.features(white_black))
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(seen[0, :, 0, 0], std / 0.5 + (mean - 0.5) / 0.5, atol=1e-6)
    assert torch.allclose(seen[1, :, 0, 0], (mean - 0.5) / 0.5, atol=1e-6)
    assert float(seen.max()) < 0.43 and float(seen.min()) > -0.19  # not [-1, 1]
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(reference_normalise(x)[0, 0], x[0, 0] * 0.458 - 0.03, atol=1e-6)
    feats = ex.features(blobs(2, seed=3, size=32))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
    assert "inception_v3_google-0cc3c7bd.pth" in ex.describe(32)["network"]


def test_rgb_order_a_bgr_swapped_image_gives_another_feature(fid_inception):
    red = torch.zeros(1, 3, 299, 299, dtype=torch.uint8)
    red[:, 0] = 255
    seen = _first_conv_input(fid_inception.model.blocks[0][0], lambda: fid_inception.features(red))
    assert float(seen[0, 0].min()) == 1.0 and float(seen[0, 2].max()) == -1.0  # R stays R
    torch.manual_seed(2)
    img = (torch.rand(1, 3, 64, 64) * 255).to(torch.uint8)
    a = fid_inception.features(img)
    b = fid_inception.features(img[:, [2, 1, 0]])
    assert not np.allclose(a, b, rtol=1e-3, atol=1e-4)


class _Recorder(ImageExtractor):
    """An extractor that keeps what reaches its network (after the resize)."""

    name, size = "recorder", 24

    def __init__(self, resize: str):
        super().__init__("cpu", resize)
        self.seen: list[torch.Tensor] = []

    def model_fn(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return x.mean(dim=(2, 3))

    @property
    def weights_sha256(self) -> str:
        return "0" * 64


def _batch(g: torch.Tensor) -> EvalBatch:
    n = len(g)
    return EvalBatch(
        fake=quantize_images(g, "round"), real=quantize_images(g, "round"),
        tokens=torch.zeros(n, 1, dtype=torch.long), mask=torch.ones(n, 1, dtype=torch.bool),
        captions=[""] * n, class_ids=torch.full((n,), -1), attributes=None,
        indices=list(range(n)), fake_float=g,
    )  # fmt: skip


def test_uint8_round_trip_before_the_resize_as_the_references_saved_pngs():
    torch.manual_seed(3)
    g = torch.rand(2, 3, 16, 16) * 2 - 1
    batch = _batch(g)
    # floor: ((x + 1) * 127.5).astype(np.uint8), then PIL bilinear on that uint8 image
    ex = _Recorder("pil_bilinear")
    batch_features(batch, ex, "fake", 8, "floor")
    png = ((g + 1) * 127.5).numpy().astype(np.uint8)  # the references' cast, truncating
    want = np.stack(
        [np.asarray(Image.fromarray(a.transpose(1, 2, 0)).resize((24, 24), Image.BILINEAR))
         for a in png]
    ).transpose(0, 3, 1, 2)  # fmt: skip
    assert np.array_equal(ex.seen[0].numpy(), want.astype(np.float32))
    # none: the float image itself is resized (DF-GAN), so the network sees non-integers
    ex = _Recorder("torch_bilinear")
    batch_features(batch, ex, "fake", 8, "none")
    want = torch.nn.functional.interpolate((g + 1) * 127.5, size=(24, 24), mode="bilinear")
    assert torch.allclose(ex.seen[0], want, atol=1e-4)
    assert not torch.equal(ex.seen[0], ex.seen[0].round())
    # floor and round differ where the fraction is at least a half
    assert not torch.equal(batch.pixels("fake", "floor"), batch.pixels("fake", "round"))
    assert (batch.pixels("fake", "round").int() - batch.pixels("fake", "floor").int()).max() == 1


def test_the_reference_resizes_are_torchvisions_own():
    """pil_bilinear is torchvision's Resize on a PIL image (DM-GAN's FID, GR-GAN's CMD);
    torch_bilinear is its Resize on a float tensor (DF-GAN's FID)."""
    from torchvision import transforms

    torch.manual_seed(4)
    img = (torch.rand(1, 3, 32, 32) * 255).to(torch.uint8)
    pil = Image.fromarray(img[0].permute(1, 2, 0).numpy())
    want = np.asarray(transforms.Resize((48, 48))(pil)).transpose(2, 0, 1)
    assert np.array_equal(resize_images(img, 48, "pil_bilinear")[0].numpy(), want)
    x = img.float() / 255
    tv = transforms.Resize((48, 48), antialias=False)(x)
    assert torch.allclose(resize_images(img, 48, "torch_bilinear") / 255, tv, atol=1e-6)
    assert not torch.allclose(
        resize_images(img, 48, "clean_bicubic"), resize_images(img, 48, "torch_bilinear")
    )


class _TFStandIn(torch.nn.Module):
    """clean-fid's TorchScript file's interface (forward(img, return_features, use_fp16,
    no_output_bias), [0, 255] input) around a tiny random head: 1008 softmax outputs."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(3, 1008)

    def forward(
        self,
        img: torch.Tensor,
        return_features: bool = False,
        use_fp16: bool = False,
        no_output_bias: bool = False,
    ) -> torch.Tensor:
        x = (img - 128) / 128
        f = x.mean(dim=(2, 3))
        if return_features:
            return f
        logits = f @ self.head.weight.t()
        if not no_output_bias:
            logits = logits + self.head.bias
        return torch.softmax(logits, dim=1)


@pytest.fixture
def tf_folder(tmp_path) -> Path:
    torch.manual_seed(5)
    stand_in = _TFStandIn()
    with torch.no_grad():
        stand_in.head.bias.normal_(0.0, 3.0)  # a bias large enough to matter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's note on TorchScript
        torch.jit.script(stand_in).save(str(tmp_path / "inception-2015-12-05.pt"))
    return tmp_path


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch's note on TorchScript
def test_the_tf_inception_is_without_the_output_bias_from_the_local_file(tf_folder, registry):
    from t2i_stages.plugins.metrics.inception_score import InceptionScoreMetric
    from t2i_stages.plugins.metrics.params import InceptionScoreParams

    clf = TFInceptionClassifier(tf_folder)
    torch.manual_seed(6)
    x = torch.rand(3, 3, 299, 299) * 255
    probs = clf.probabilities(x)
    scripted = torch.jit.load(str(tf_folder / "inception-2015-12-05.pt"))
    assert probs.shape == (3, 1008)
    with torch.no_grad():
        assert np.allclose(probs, scripted(x, no_output_bias=True).numpy(), atol=1e-6)
        assert not np.allclose(probs, scripted(x).numpy(), rtol=0.1, atol=0)
    params = InceptionScoreParams(
        network="tf_inception", inception_path=str(tf_folder), resize="pil_bilinear",
        quantize="floor", splits=2,
    )  # fmt: skip
    metric = InceptionScoreMetric(params)
    assert metric.sha == clf.sha256 and metric.net.scale == "[0, 255]"
    p = metric.probabilities((torch.rand(4, 3, 32, 32) * 255).to(torch.uint8))
    assert p.shape == (4, 1008) and np.allclose(p.sum(axis=1), 1.0)


def test_a_missing_tf_inception_is_named(tmp_path, monkeypatch, registry):
    monkeypatch.setenv("T2I_STAGES_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    slot = make_slot("inception_score", {"network": "tf_inception"}, registry)
    with pytest.raises(MissingAssetError, match="inception-2015-12-05.pt") as err:
        registry.build("metric", slot, device="cpu")
    assert str(tmp_path / "home" / "cleanfid") in str(err.value)


def test_cmd_refuses_a_clip_that_is_not_vit_b32_when_asked(tiny_clip_folder, registry):
    from t2i_stages.errors import T2IError

    slot = make_slot(
        "cmd", {"clip_folder": str(tiny_clip_folder), "expect_vit_b32": True}, registry
    )
    with pytest.raises(T2IError, match="is not CLIP ViT-B/32"):
        registry.build("metric", slot, device="cpu")
    relaxed = make_slot("cmd", {"clip_folder": str(tiny_clip_folder)}, registry)
    assert registry.build("metric", relaxed, device="cpu").p.expect_vit_b32 is False
