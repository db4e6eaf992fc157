"""Real-data loaders on tiny fixtures written in each on-disk layout, and every bad-data case."""

from __future__ import annotations

import json
import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from t2i_stages.errors import T2IError
from t2i_stages.plugins.datasets.base import DataWarning
from t2i_stages.plugins.datasets.coco import CocoParams, coco_factory
from t2i_stages.plugins.datasets.cub import CubParams, cub_factory
from t2i_stages.plugins.datasets.folder import FolderParams, folder_factory
from t2i_stages.plugins.datasets.legacy_pickle import safe_load_pickle

RES = [16, 32]


def write_image(path, size=(48, 40), color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def captions(n, stem="a photo of thing"):
    return [f"{stem} number {k}" for k in range(n)]


def write_text(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def dump_pickle(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value, protocol=2))


def check_sample(ds, i=0):
    s = ds[i]
    assert [tuple(x.shape) for x in s["images"]] == [(3, r, r) for r in RES]
    assert all(x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1 for x in s["images"])
    assert s["caption"] in ds.captions(i) and s["tokens"].shape == (ds.max_words,)
    assert torch.equal(s["mask"], s["tokens"] != 0) and bool(s["mask"][0])
    return s


# ---- COCO ---------------------------------------------------------------------------------
def test_coco_official_layout(tmp_path):
    for part, names in (("train", ["b.jpg", "a.jpg", "c.jpg"]), ("val", ["v.jpg"])):
        images = [{"id": k, "file_name": n} for k, n in enumerate(names)]
        anns = [
            {"image_id": k, "caption": c}
            for k in range(len(names))
            for c in captions(5, f"{part} picture")
        ]
        anns.append({"image_id": 0, "caption": "   "})  # blank captions are dropped
        write_text(
            tmp_path / "annotations" / f"captions_{part}2014.json",
            [json.dumps({"images": images, "annotations": anns})],
        )
        for n in names:
            write_image(tmp_path / f"{part}2014" / n)
    train = coco_factory(CocoParams(root=str(tmp_path)), "train", RES)
    assert len(train) == 3 and [train.key(i) for i in range(3)] == ["a", "b", "c"]
    assert all(len(train.captions(i)) == 5 for i in range(3))
    assert "val" in train.vocab  # the vocabulary spans train and test captions
    check_sample(train)
    test = coco_factory(CocoParams(root=str(tmp_path)), "test", RES)
    assert len(test) == 1 and test[0]["class_id"] == -1


def test_coco_attngan_layout_and_bad_samples(tmp_path):
    keys = [
        "COCO_train2014_000000000001",
        "COCO_train2014_000000000002",
        "COCO_train2014_000000000003",
    ]
    dump_pickle(tmp_path / "train" / "filenames.pickle", keys)
    dump_pickle(tmp_path / "test" / "filenames.pickle", ["COCO_val2014_000000000009"])
    for k in keys:
        write_image(tmp_path / "images" / f"{k}.jpg")
        write_text(tmp_path / "text" / f"{k}.txt", captions(5))
    write_text(tmp_path / "text" / f"{keys[2]}.txt", captions(3))  # too few captions
    write_image(
        tmp_path / "images" / "train2014" / "COCO_val2014_000000000009.jpg"
    )  # DF-GAN subfolder
    write_text(tmp_path / "text" / "COCO_val2014_000000000009.txt", captions(5, "held out words"))
    with pytest.warns(DataWarning, match=r"skipped 1 of 3 .*000000000003\.jpg: 3 captions"):
        ds = coco_factory(CocoParams(root=str(tmp_path)), "train", RES)
    assert len(ds) == 2 and ds.skipped == 1 and "held" in ds.vocab
    check_sample(ds, 1)
    assert len(coco_factory(CocoParams(root=str(tmp_path)), "test", RES)) == 1


def test_coco_missing_layout_is_a_clear_error(tmp_path):
    with pytest.raises(T2IError, match="neither train/filenames.pickle nor annotations"):
        coco_factory(CocoParams(root=str(tmp_path)), "train", RES)


# ---- CUB ----------------------------------------------------------------------------------
def _write_cub(root):
    keys = [
        "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18",
        "002.Laysan_Albatross/Laysan_Albatross_0002_1027",
    ]
    dump_pickle(root / "train" / "filenames.pickle", keys)
    dump_pickle(root / "train" / "class_info.pickle", [1, 2])
    dump_pickle(root / "test" / "filenames.pickle", keys[:1])
    lines_images, lines_boxes = [], []
    for n, k in enumerate(keys, start=1):
        img = Image.new("RGB", (200, 160), (30, 30, 220))  # blue background
        img.paste((220, 30, 30), (120, 40, 160, 80))  # a red "bird" in the box
        (root / "CUB_200_2011" / "images" / k).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / "CUB_200_2011" / "images" / f"{k}.jpg", quality=95)
        write_text(root / "text" / f"{k}.txt", captions(10, "this bird has wings"))
        lines_images.append(f"{n} {k}.jpg")
        lines_boxes.append(f"{n} 120.0 40.0 40.0 40.0")
    write_text(root / "CUB_200_2011" / "images.txt", lines_images)
    write_text(root / "CUB_200_2011" / "bounding_boxes.txt", lines_boxes)
    return keys


def _red_share(t):
    img = t.add(1).mul(127.5)
    return float(((img[0] > 150) & (img[2] < 100)).float().mean())


def test_cub_layout_with_bbox_crop(tmp_path):
    _write_cub(tmp_path)
    ds = cub_factory(CubParams(root=str(tmp_path), random_crop=False, flip=False), "train", RES)
    assert len(ds) == 2 and [ds[i]["class_id"] for i in range(2)] == [1, 2]
    s = check_sample(ds)
    plain = cub_factory(
        CubParams(root=str(tmp_path), bbox_crop=False, random_crop=False, flip=False), "train", RES
    )
    assert _red_share(s["images"][1]) > 0.3 > 0.1 > _red_share(plain[0]["images"][1])
    assert len(cub_factory(CubParams(root=str(tmp_path)), "test", RES)) == 1


def test_cub_bbox_files_required_for_bbox_crop(tmp_path):
    _write_cub(tmp_path)
    (tmp_path / "CUB_200_2011" / "bounding_boxes.txt").unlink()
    with pytest.raises(T2IError, match="bounding_boxes.txt"):
        cub_factory(CubParams(root=str(tmp_path)), "train", RES)
    (tmp_path / "train" / "class_info.pickle").unlink()  # class ids then come from the key prefix
    ds = cub_factory(CubParams(root=str(tmp_path), bbox_crop=False), "train", RES)
    assert [ds.class_id(i, 0) for i in range(2)] == [1, 2]


# ---- restricted unpickler ----------------------------------------------------------------
class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_legacy_pickles_admit_only_plain_data(tmp_path):
    good = tmp_path / "good.pickle"
    dump_pickle(good, {"keys": ["a", b"b"], "n": [1, 2]})
    assert safe_load_pickle(good) == {"keys": ["a", "b"], "n": [1, 2]}
    target = tmp_path / "pwned"
    evil = tmp_path / "filenames.pickle"
    evil.write_bytes(pickle.dumps(_Evil(str(target))))
    with pytest.raises(
        T2IError,
        match=r"filenames.pickle: not a plain-data pickle: refusing to load 'posix.mkdir'|refusing",
    ):
        safe_load_pickle(evil)
    assert not target.exists()
    arr = tmp_path / "array.pickle"
    arr.write_bytes(pickle.dumps(np.arange(3)))
    with pytest.raises(T2IError, match="refusing"):
        safe_load_pickle(arr)


# ---- folder -------------------------------------------------------------------------------
def _folder_with_every_bad_case(root):
    for name in ("good1", "good2", "nocaps", "emptycaps", "latin1", "fewcaps", "corrupt", "zero"):
        write_image(root / "train" / f"{name}.png")
        write_text(root / "train" / f"{name}.txt", captions(2, f"{name} text"))
    (root / "train" / "nocaps.txt").unlink()
    (root / "train" / "emptycaps.txt").write_text("\n  \n", encoding="utf-8")
    (root / "train" / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    write_text(root / "train" / "fewcaps.txt", ["only one"])
    (root / "train" / "corrupt.png").write_bytes(b"\x89PNG not really an image")
    (root / "train" / "zero.png").write_bytes(b"")
    write_text(root / "train" / "missing_image.txt", ["captions without an image are ignored"])


def test_folder_skips_every_bad_case_with_one_warning(tmp_path):
    _folder_with_every_bad_case(tmp_path)
    params = FolderParams(root=str(tmp_path), test=None, min_captions=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = folder_factory(params, "train", RES)
    data_warnings = [w for w in caught if issubclass(w.category, DataWarning)]
    assert len(data_warnings) == 1
    msg = str(data_warnings[0].message)
    assert "skipped 6 of 8 samples" in msg and "(and 1 more)" in msg  # 2 good ones kept
    assert "nocaps.txt: caption file missing" in msg and "not UTF-8" in msg
    assert sorted(ds.key(i) for i in range(len(ds))) == ["good1", "good2"]
    check_sample(ds)


@pytest.mark.parametrize(
    "case,reason",
    [
        ("nocaps", "caption file missing"),
        ("emptycaps", "no captions"),
        ("latin1", "not UTF-8"),
        ("fewcaps", "fewer than min_captions"),
        ("corrupt", "cannot be decoded"),
        ("zero", "empty"),
    ],
)
def test_folder_strict_mode_names_the_file(tmp_path, case, reason):
    write_image(tmp_path / "train" / "good.png")
    write_text(tmp_path / "train" / "good.txt", captions(2))
    _folder_with_every_bad_case(tmp_path / "all")
    for suffix in (".png", ".txt"):
        src = tmp_path / "all" / "train" / f"{case}{suffix}"
        if src.exists():
            (tmp_path / "train" / f"{case}{suffix}").write_bytes(src.read_bytes())
    with pytest.raises(T2IError, match=rf"{case}\.(png|txt): .*{reason}"):
        folder_factory(
            FolderParams(root=str(tmp_path), test=None, min_captions=2, strict=True), "train", RES
        )


def test_folder_jsonl_manifest_and_bad_lines(tmp_path):
    for n in ("x", "y"):
        write_image(tmp_path / "imgs" / f"{n}.jpg")
    lines = [
        json.dumps({"image": "imgs/x.jpg", "captions": ["a red thing", "a crimson thing"]}),
        "{this is not json",
        json.dumps({"image": "imgs/y.jpg", "caption": "a single caption"}),
        json.dumps({"image": "imgs/missing.jpg", "captions": ["no file"]}),
        json.dumps({"captions": ["no image key"]}),
        "",
    ]
    write_text(tmp_path / "train.jsonl", lines)
    write_text(
        tmp_path / "test.jsonl",
        [json.dumps({"image": "imgs/x.jpg", "captions": ["testonly word"]})],
    )
    with pytest.warns(
        DataWarning, match=r"skipped 3 of 5 samples .*train.jsonl:2: manifest line is not JSON"
    ):
        ds = folder_factory(
            FolderParams(root=str(tmp_path), train="train.jsonl", test="test.jsonl"), "train", RES
        )
    assert len(ds) == 2 and ds.captions(1) == ["a single caption"] and "testonly" in ds.vocab
    with pytest.raises(T2IError, match=r"train.jsonl:2: manifest line is not JSON"):
        folder_factory(
            FolderParams(root=str(tmp_path), train="train.jsonl", test="test.jsonl", strict=True),
            "train",
            RES,
        )


def test_folder_test_fraction_split_is_disjoint_and_complete(tmp_path):
    for k in range(20):
        write_image(tmp_path / "all" / f"im{k}.png", size=(20, 20))
        write_text(tmp_path / "all" / f"im{k}.txt", [f"image {k}"])
    p = FolderParams(
        root=str(tmp_path), train="all", test=None, test_fraction=0.3, check_images="none"
    )
    tr, te = folder_factory(p, "train", RES), folder_factory(p, "test", RES)
    keys_tr, keys_te = {tr.key(i) for i in range(len(tr))}, {te.key(i) for i in range(len(te))}
    assert not keys_tr & keys_te and len(keys_tr | keys_te) == 20 and len(keys_te) > 0


def test_image_failing_mid_epoch_is_replaced_not_fatal(tmp_path):
    for n in ("a", "b", "c"):
        write_image(tmp_path / "train" / f"{n}.png")
        write_text(tmp_path / "train" / f"{n}.txt", [f"caption {n}"])
    ds = folder_factory(FolderParams(root=str(tmp_path), test=None), "train", RES)
    (tmp_path / "train" / "b.png").write_bytes(b"garbage now")
    with pytest.warns(DataWarning, match=r"failed while loading .*b\.png"):
        s = ds[1]
    assert s["index"] == 2 and s["caption"] == "caption c"
    strict = folder_factory(
        FolderParams(root=str(tmp_path), test=None, strict=True, check_images="none"), "train", RES
    )
    with pytest.raises(T2IError, match=r"b\.png: image cannot be decoded"):
        strict[1]


def test_real_crops_are_deterministic_per_epoch_and_index(tmp_path):
    rng = np.random.default_rng(0)
    for n in ("a", "b"):
        (tmp_path / "train").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)).save(
            tmp_path / "train" / f"{n}.png"
        )
        write_text(tmp_path / "train" / f"{n}.txt", ["one", "two", "three"])
    ds = folder_factory(FolderParams(root=str(tmp_path), test=None), "train", RES)
    first = [ds[0]["images"][1] for _ in range(2)]
    assert torch.equal(*first)
    crops = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        crops.add(ds[0]["images"][1].sum().item())
    assert len(crops) > 1  # crops / flips change with the epoch
    test_like = folder_factory(
        FolderParams(root=str(tmp_path), train="train", test="train"), "test", RES
    )
    test_like.set_epoch(3)
    a = test_like[0]["images"][1]
    test_like.set_epoch(4)
    assert torch.equal(a, test_like[0]["images"][1])  # the test split is not augmented
