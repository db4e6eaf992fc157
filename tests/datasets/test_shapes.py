"""The procedural shapes dataset: determinism, caption truth, the sample contract, the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from t2i_stages.errors import T2IError
from t2i_stages.plugins.datasets.shapes import ShapesDataset, shapes_factory, verify_split
from t2i_stages.plugins.datasets.shapes.captions import (
    COLOR_WORDS,
    FINE_ADJ,
    FINE_PP,
    REL_WORDS,
    SHAPE_WORDS,
    SIZE_WORDS,
)
from t2i_stages.plugins.datasets.shapes.params import FINES, SHAPES, SIZES, ShapesParams
from t2i_stages.plugins.datasets.shapes.scene import COLOR_NAMES, relation
from t2i_stages.recipe import DatasetSlot
from t2i_stages.registry import load_registry
from t2i_stages.text import tokenize


def _has(tokens: list[str], phrase: str) -> bool:
    p = tokenize(phrase)
    return any(tokens[i : i + len(p)] == p for i in range(len(tokens) - len(p) + 1))


def _any(tokens, phrases) -> bool:
    return any(_has(tokens, ph) for ph in phrases)


def check_caption(caption: str, rows: np.ndarray, grid: int) -> None:
    """Independent check that a caption states only true things about its image."""
    toks = tokenize(caption)
    present = [r for r in rows if r[0] == 1]
    for r in present:
        assert r[7] == 1 and _any(toks, SHAPE_WORDS[SHAPES[r[1]]]), caption
        if r[8] == 1:
            assert _any(toks, COLOR_WORDS[COLOR_NAMES[r[2]]]), caption
        if r[9] == 1:
            assert _any(toks, SIZE_WORDS[SIZES[r[3]]]), caption
        if r[13] == 1:
            assert _any(toks, FINE_ADJ[FINES[r[6]]] + FINE_PP[FINES[r[6]]]), caption
        if r[10] == 1:
            row_words = (
                {0: ("top", "upper"), 2: ("bottom", "lower")}.get(int(r[4])) if grid == 3 else None
            )
            col_words = {0: ("left",), 2: ("right",)}.get(int(r[5])) if grid == 3 else None
            if row_words:
                assert _any(toks, row_words), caption
            if col_words:
                assert _any(toks, col_words), caption
            if grid == 3 and r[4] == 1 and r[5] == 1:
                assert _any(toks, ("center", "middle")), caption
        if r[10] == 2:
            target = rows[r[12]]
            assert target[0] == 1
            assert r[11] in relation(r, target), caption  # the stated relation holds
            assert _any(toks, REL_WORDS[int(r[11])]), caption
    # nothing false: every colour / shape / size word belongs to a mentioned object
    for name, words in COLOR_WORDS.items():
        if _any(toks, words):
            assert any(COLOR_NAMES[r[2]] == name and r[8] == 1 for r in present), (name, caption)
    for name, words in SHAPE_WORDS.items():
        if _any(toks, words):
            assert any(SHAPES[r[1]] == name for r in present), (name, caption)
    for name, words in SIZE_WORDS.items():
        if _any(toks, words):
            assert any(SIZES[r[3]] == name and r[9] == 1 for r in present), (name, caption)


def test_every_caption_agrees_with_its_ground_truth(tiny_train):
    n = 0
    for i in range(len(tiny_train)):
        for ci, caption in enumerate(tiny_train.captions(i)):
            check_caption(caption, tiny_train.attributes(i, ci).numpy(), tiny_train.grid)
            n += 1
    assert n >= 5 * len(tiny_train)


def test_captions_per_image_vary_and_use_templates(tiny_train):
    counts = [len(tiny_train.captions(i)) for i in range(len(tiny_train))]
    assert min(counts) >= 5 and max(counts) <= 10 and len(set(counts)) > 1
    caps = [c for i in range(len(tiny_train)) for c in tiny_train.captions(i)]
    assert any(c.startswith("there is") for c in caps) and any(" that is " in c for c in caps)
    assert len(set(caps)) > 0.9 * len(caps)


def test_sample_contract(tiny_train):
    s = tiny_train[5]
    assert [tuple(x.shape) for x in s["images"]] == [(3, 16, 16), (3, 32, 32), (3, 64, 64)]
    assert all(x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 for x in s["images"])
    assert s["tokens"].dtype == torch.int64 and s["tokens"].shape == (tiny_train.max_words,)
    assert s["mask"].dtype == torch.bool and torch.equal(s["mask"], s["tokens"] != 0)
    assert s["caption"] == tiny_train.captions(5)[s["caption_index"]] and s["index"] == 5
    assert tiny_train.vocab.decode(s["tokens"].tolist()) == " ".join(tokenize(s["caption"]))
    assert s["attributes"].dtype == torch.int64 and s["attributes"].shape == (3, 14)
    names = tiny_train.decode(s["attributes"])
    assert len(names) == int((s["attributes"][:, 0] == 1).sum()) and names[0]["shape"] in SHAPES
    batch = tiny_train.collate([tiny_train[i] for i in range(4)])
    assert batch["images"][2].shape == (4, 3, 64, 64) and batch["attributes"].shape == (4, 3, 14)
    assert torch.equal(batch["lengths"], batch["mask"].sum(1))


def test_class_id_identifies_the_shape_colour_multiset(tiny_train):
    by_id: dict[int, set] = {}
    for i in range(len(tiny_train)):
        objs = tiny_train.objects[i]
        key = tuple(sorted((int(o[1]), int(o[2])) for o in objs if o[0] == 1))
        by_id.setdefault(tiny_train.class_id(i, 0), set()).add(key)
    assert all(len(v) == 1 for v in by_id.values())


def test_vocabulary_covers_every_caption(tiny_train):
    for i in range(len(tiny_train)):
        for c in tiny_train.captions(i):
            assert all(w in tiny_train.vocab for w in tokenize(c)), c


def test_same_seed_gives_byte_identical_images_whatever_the_workers(tmp_path, tiny_params):
    a = tiny_params.model_copy(
        update={"cache_dir": str(tmp_path / "a"), "workers": 1, "train_size": 20}
    )
    b = tiny_params.model_copy(
        update={"cache_dir": str(tmp_path / "b"), "workers": 2, "train_size": 20}
    )
    da, db = ShapesDataset(a, "train", quiet=True), ShapesDataset(b, "train", quiet=True)
    for r in (16, 32, 64):
        assert (da.cache_path / f"images_{r}.npy").read_bytes() == (
            db.cache_path / f"images_{r}.npy"
        ).read_bytes()
    assert da.manifest["files"] == db.manifest["files"]
    assert verify_split(da.cache_path) == []
    c = ShapesDataset(
        a.model_copy(update={"seed": 1, "cache_dir": str(tmp_path / "c")}), "train", quiet=True
    )
    assert not np.array_equal(da.images_uint8(0), c.images_uint8(0))
    # test and train draw different scenes
    t = ShapesDataset(a.model_copy(update={"test_size": 20}), "test", quiet=True)
    assert not np.array_equal(da.images_uint8(0), t.images_uint8(0))


def test_renders_are_antialiased_and_consistent_across_resolutions(tiny_train):
    hi = tiny_train.images_uint8(3, 64).astype(np.float64)
    lo = tiny_train.images_uint8(3, 32).astype(np.float64)
    down = hi.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(down - lo).mean() < 4.0  # the same scene, not a different one
    colours = {tuple(p) for p in tiny_train.images_uint8(3, 64).reshape(-1, 3)}
    assert len(colours) > 20  # edge pixels blend (a hard-edged render has a handful of colours)


def test_cache_is_reused_extended_and_regenerated_only_on_content_change(tmp_path, tiny_params):
    p = tiny_params.model_copy(
        update={"cache_dir": str(tmp_path), "train_size": 10, "resolutions": [16]}
    )
    d1 = ShapesDataset(p, "train", quiet=True)
    objects_mtime = (d1.cache_path / "objects.npy").stat().st_mtime_ns
    image_mtime = (d1.cache_path / "images_16.npy").stat().st_mtime_ns
    # a field that does not change the content (and another resolution) reuses the folder
    d2 = ShapesDataset(
        p.model_copy(update={"max_words": 20}), "train", resolutions=[16, 32], quiet=True
    )
    assert d2.cache_path == d1.cache_path
    assert (d2.cache_path / "objects.npy").stat().st_mtime_ns == objects_mtime
    assert (d2.cache_path / "images_16.npy").stat().st_mtime_ns == image_mtime
    assert set(json.loads((d2.cache_path / "manifest.json").read_text())["files"]) >= {
        "images_16.npy",
        "images_32.npy",
    }
    # a damaged file is regenerated
    with open(d1.cache_path / "images_16.npy", "r+b") as fh:
        fh.truncate(100)
    d3 = ShapesDataset(p, "train", quiet=True)
    assert verify_split(d3.cache_path) == [] and np.array_equal(
        d3.images_uint8(0, 16), d2.images_uint8(0, 16)
    )
    # a content field changes the key
    d4 = ShapesDataset(p.model_copy(update={"p_fine": 0.0}), "train", quiet=True)
    assert d4.cache_path != d1.cache_path
    manifest = json.loads((d4.cache_path / "manifest.json").read_text())
    assert manifest["params"]["p_fine"] == 0.0 and all(
        len(f["sha256"]) == 64 for f in manifest["files"].values()
    )


def test_caption_draw_depends_only_on_seed_epoch_index_even_in_workers(tiny_train):
    def epoch_draws(loader_workers: int, epoch: int) -> list[int]:
        tiny_train.set_epoch(epoch)
        loader = DataLoader(
            tiny_train, batch_size=8, num_workers=loader_workers, collate_fn=tiny_train.collate
        )
        return [int(c) for b in loader for c in b["caption_index"]]

    e0, e1 = epoch_draws(0, 0), epoch_draws(0, 1)
    assert e0 != e1
    tiny_train.set_epoch(1)
    persistent = DataLoader(
        tiny_train,
        batch_size=8,
        num_workers=2,
        persistent_workers=True,
        collate_fn=tiny_train.collate,
    )
    assert [int(c) for b in persistent for c in b["caption_index"]] == e1
    tiny_train.set_epoch(0)  # a resumed run: same epoch, same data, reaches live workers
    assert [int(c) for b in persistent for c in b["caption_index"]] == e0
    assert epoch_draws(2, 0) == e0


def test_registry_builds_shapes_with_stage_resolutions(tiny_params):
    reg = load_registry()
    slot = DatasetSlot(type="shapes", params=tiny_params.model_dump())
    ds = reg.build("dataset", slot, split="test", resolutions=[8, 16], quiet=True)
    assert len(ds) == tiny_params.test_size and ds.resolutions == [8, 16]
    assert [x.shape[-1] for x in ds[0]["images"]] == [8, 16]


def test_easy_demo_setting(tmp_path):
    p = ShapesParams(
        train_size=8,
        test_size=4,
        max_objects=1,
        grid=1,
        sizes=["large"],
        background="plain",
        object_scale=1.15,
        resolutions=[32, 64],
        cache_dir=str(tmp_path),
    )
    ds = shapes_factory(p, "train", quiet=True)
    attrs = ds[0]["attributes"]
    assert int(attrs[:, 0].sum()) == 1 and attrs[0, 4] == 0 and attrs[0, 5] == 0
    img = ds.images_uint8(0, 64)
    assert (
        np.abs(img.astype(int) - 200).sum(-1) > 30
    ).mean() > 0.25  # a big object on a plain background


def test_bad_params_are_clear_errors(tiny_params):
    with pytest.raises(ValueError, match="does not fit"):
        ShapesParams(max_objects=5, grid=2)
    with pytest.raises(ValueError, match="extra"):
        ShapesParams(colour=["red"])
    with pytest.raises(T2IError, match="resolutions"):
        ShapesDataset(tiny_params, "train", resolutions=[32, 16], quiet=True)
    with pytest.raises(T2IError, match="split"):
        ShapesDataset(tiny_params, "val", quiet=True)


@pytest.mark.parametrize("grid,max_objects", [(3, 3), (2, 2), (1, 1)])
def test_captions_agree_over_many_scenes(grid, max_objects):
    from t2i_stages.plugins.datasets.shapes import sample_scene, scene_captions

    p = ShapesParams(
        grid=grid, max_objects=max_objects, p_size=0.8, p_fine=0.8, p_position=0.9, p_relation=0.7
    )
    relations = 0
    for i in range(400):
        scene = sample_scene(p, 0, i)
        texts, mentions = scene_captions(p, scene, 0, i)
        assert p.min_captions <= len(texts) <= p.max_captions
        for t, m in zip(texts, mentions, strict=False):
            rows = np.concatenate([scene.objects, m.astype(np.int64)], axis=1)
            check_caption(t, rows, grid)
            relations += int((rows[:, 10] == 2).sum())
            assert len(tokenize(t)) <= p.max_caption_words
    assert (relations > 0) == (max_objects > 1)


def test_hugging_face_tokenizer_and_saved_vocab(tmp_path, tiny_params, tiny_train):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "a": 2, "red": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    ds = ShapesDataset(
        tiny_params.model_copy(update={"tokenizer": str(tmp_path / "tokenizer.json")}), quiet=True
    )
    s = ds[0]
    assert s["tokens"].shape == (tiny_params.max_words,) and int(s["mask"].sum()) == len(
        ds.vocab.tok(s["caption"])["input_ids"]
    )
    assert len(ds.vocab) == 4
    tiny_train.vocab.save(tmp_path / "vocab.json")
    again = ShapesDataset(
        tiny_params.model_copy(update={"vocab_path": str(tmp_path / "vocab.json")}), quiet=True
    )
    assert again.vocab == tiny_train.vocab and torch.equal(
        again[3]["tokens"], tiny_train[3]["tokens"]
    )
