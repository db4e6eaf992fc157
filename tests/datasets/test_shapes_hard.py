"""shapes-hard (issue 21): captions that carry every attribute and fit, an oracle that reads every
object of real images, and the family recipes (the GPU variant validated and built on meta)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from t2i_stages.plugin import tokenize
from t2i_stages.plugins.datasets.shapes import ShapesDataset, ShapesParams
from t2i_stages.plugins.datasets.shapes.oracle import load_oracle, score_objects
from t2i_stages.plugins.datasets.shapes.scene import M_COLOR, M_FINE, M_POS, M_SIZE
from t2i_stages.recipe.sources import read_recipe

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "recipes/base/shapes-hard.yaml"
BASE_GPU = REPO / "recipes/base/shapes-hard-gpu.yaml"
FAMILIES = ("grgan", "attngan", "dmgan", "dfgan")


def hard_params(**changes) -> ShapesParams:
    """The preset's dataset params (read from its recipe), with ``changes``."""
    params = dict(read_recipe(BASE).data["data"]["dataset"]["params"])
    return ShapesParams(**{**params, **changes})


@pytest.fixture(scope="module")
def hard_test() -> ShapesDataset:
    """240 test images of the preset at 64 px (the private session cache)."""
    p = hard_params(train_size=16, test_size=240, resolutions=[64], workers=1)
    return ShapesDataset(p, "test", quiet=True)


def test_every_caption_names_every_attribute_of_every_object_and_fits(hard_test):
    p = hard_test.params
    assert p.max_caption_words <= p.max_words  # no caption is ever cut
    three = 0
    for i in range(len(hard_test)):
        n_objects = int((hard_test.objects[i][:, 0] == 1).sum())
        three += n_objects == 3
        for c, caption in enumerate(hard_test.captions(i)):
            assert len(tokenize(caption)) <= p.max_words, caption
            rows = hard_test.attributes(i, c)
            present = rows[rows[:, 0] == 1]
            assert len(present) == n_objects
            # colour, size and fine detail named, and the place given as an absolute cell
            assert (present[:, [M_COLOR, M_SIZE, M_FINE]] == 1).all(), caption
            assert (present[:, M_POS] == 1).all(), caption
    assert three >= 40  # the split does hold three-object scenes with all attributes named


def test_three_objects_with_every_attribute_fit_max_words():
    """The longest three-object captions the generator writes stay within max_words."""
    import numpy as np

    from t2i_stages.plugins.datasets.shapes.captions import caption_scene
    from t2i_stages.plugins.datasets.shapes.scene import sample_scene

    p = hard_params(max_caption_words=80)  # measure, without the redraw
    lengths = []
    for i in range(400):
        scene = sample_scene(p, 0, i)
        if scene.count != 3:
            continue
        rng = np.random.default_rng(i)
        lengths += [len(tokenize(caption_scene(p, scene, rng)[0])) for _ in range(5)]
    lengths = np.array(lengths)
    # the preset's limit keeps ~99% of the draws as they come; the rest are redrawn, never cut
    assert (lengths <= hard_params().max_words).mean() > 0.98
    assert np.percentile(lengths, 50) >= 30  # a three-object caption is a long one


@pytest.fixture(scope="module")
def oracle64(hard_test):
    """The preset's oracle at 64 px, trained as a run trains it (cached for the session)."""
    return load_oracle(hard_test, resolution=64, log=lambda m: None)


def test_the_oracle_reads_every_object_of_real_images(hard_test, oracle64):
    import numpy as np

    stored = np.stack([hard_test.images_uint8(i, 64) for i in range(len(hard_test))])
    images = torch.from_numpy(stored).permute(0, 3, 1, 2)
    truth = torch.stack([hard_test.attributes(i, 0) for i in range(len(hard_test))])
    pred = oracle64.predict(images.float() / 127.5 - 1)
    s = score_objects(pred, truth, hard_test.grid)
    assert s["n_objects"] >= 400
    for attr in ("shape", "color", "size", "fine", "position"):
        assert s[attr] >= 0.98, (attr, s)
    assert s["all_correct"] >= 0.95, s
    # the same images judged against another image's objects are almost never all correct
    wrong = score_objects(pred, truth.roll(1, dims=0), hard_test.grid)
    assert wrong["all_correct"] < 0.05 and wrong["shape"] < 0.5


def _rows(*objects):
    t = torch.full((3, 7), -1, dtype=torch.int64)
    t[:, 0] = 0
    for k, o in enumerate(objects):
        t[k] = torch.tensor([1, *o])
    return t


def test_score_objects_pairs_by_cell_and_fails_extra_or_missing_objects():
    a, b = (0, 1, 2, 0, 0, 1), (4, 5, 0, 1, 1, 3)  # shape, colour, size, row, col, fine
    gt = torch.stack([_rows(a, b)] * 4)
    pred = torch.stack(
        [
            _rows(b, a),  # same objects listed in another order: paired by cell, all right
            _rows(a, (4, 5, 1, 1, 1, 3)),  # b's size wrong
            _rows(a, b, (1, 1, 1, 0, 1, 0)),  # an extra object: objects right, image not
            _rows((4, 5, 0, 0, 1, 3)),  # a missing; b drawn in another cell
        ]
    )
    s = score_objects(pred, gt, grid=2)
    assert s["all_correct"] == 0.25  # only image 0
    assert s["size"] == 6 / 8 and s["n_objects"] == 8
    # image 3: b is paired with the lone prediction (it agrees on everything but the cell, a on
    # nothing), so a is left unpaired: wrong on every attribute
    assert s["position"] == 6 / 8 and s["shape"] == 7 / 8
    assert s["all"] == 5 / 8


# ---------------------------------------------------------------------------- the recipes


@pytest.mark.parametrize("name", [*FAMILIES, *(f"{f}-gpu" for f in FAMILIES)])
def test_family_recipes_validate(name, capsys):
    from t2i_stages.cli.main import main

    assert main(["validate", str(REPO / f"recipes/shapes-hard/{name}.yaml")]) == 0
    assert "ok" in capsys.readouterr().out


@pytest.fixture(scope="module")
def registry():
    from t2i_stages.registry import load_registry

    return load_registry()


@pytest.mark.parametrize("family", FAMILIES)
def test_gpu_variant_builds_at_64_128_256_on_meta(family, registry):
    from t2i_stages.build import assemble
    from t2i_stages.recipe import load_recipe

    recipe = load_recipe(REPO / f"recipes/shapes-hard/{family}-gpu.yaml", [], registry)
    built = assemble(recipe, registry, parts=["generator", "discriminators"], device="meta")
    want = [256] if family == "dfgan" else [64, 128, 256]
    assert list(built.resolutions) == want
    assert len(built.discriminators) == len(want)
    cpu = load_recipe(REPO / f"recipes/shapes-hard/{family}.yaml", [], registry)
    small = assemble(cpu, registry, parts=["generator"], device="meta")
    assert list(small.resolutions) == ([64] if family == "dfgan" else [16, 32, 64])


@pytest.mark.parametrize("family", FAMILIES)
def test_gpu_family_recipes_keep_the_gpu_base_data(family):
    """The family GPU recipes repeat base/shapes-hard-gpu.yaml's data: they must not drift."""
    gpu_base = read_recipe(BASE_GPU).data
    recipe = read_recipe(REPO / f"recipes/shapes-hard/{family}-gpu.yaml").data
    assert recipe["data"] == gpu_base["data"]
    assert recipe["eval"] == gpu_base["eval"] == read_recipe(BASE).data["eval"]
    cpu = read_recipe(REPO / f"recipes/shapes-hard/{family}.yaml").data
    assert cpu["data"] == read_recipe(BASE).data["data"]
