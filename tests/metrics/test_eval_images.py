"""`t2i-stages eval --images`: given images scored with a run's metrics and protocol block.

The reference is the micro recipe on a one-object shapes set whose oracle is far from perfect
at 32 px (about 0.55 of the images have every mentioned attribute read right), so "the images
score like the oracle" is a claim about these particular images and their ground truth, not a
ceiling every reading reaches.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2i_stages.cli.main import main
from t2i_stages.data_files import BadDataError, DataWarning
from t2i_stages.errors import T2IError
from t2i_stages.evaluation import evaluate_images, evaluate_stream, read_image_folder
from t2i_stages.evaluation.image_stream import caption_key

MICRO = Path(__file__).parents[1] / "training" / "micro.yaml"
N = 200  # test images; also the train images of the sampling floor
SETS = [
    "data.dataset.params.max_objects=1",
    "data.dataset.params.grid=1",
    f"data.dataset.params.train_size={N}",
    f"data.dataset.params.test_size={N}",
]
METRICS = ["attribute_accuracy", "fid:extractor=oracle", "fid:extractor=random"]
FDS = {"FD[oracle]": "fid", "FD[random]": "fid#2"}


def _quiet(_: str) -> None:
    pass


def write_folder(
    folder: Path,
    images: list[np.ndarray],
    captions: list[str],
    *,
    index: bool = False,
    sidecar: bool = False,
    size: tuple[int, int] | None = None,
    bgr: bool = False,
) -> Path:
    """PNGs 0000.png ... with captions.jsonl (and sidecar .txt captions); the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (arr, caption) in enumerate(zip(images, captions, strict=True)):
        img = Image.fromarray(np.ascontiguousarray(arr[:, :, ::-1] if bgr else arr))
        if size is not None:
            img = img.resize(size, Image.BICUBIC)
        img.save(folder / f"{i:04d}.png")
        entry = {"image": f"{i:04d}.png", "caption": caption}
        if index:
            entry["index"] = i
        lines.append(json.dumps(entry))
        if sidecar:
            (folder / f"{i:04d}.txt").write_text(caption + "\n", encoding="utf-8")
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def shapes(registry):
    """The reference's test and train splits, as the evaluation builds them."""
    from t2i_stages.build import assemble
    from t2i_stages.recipe import load_recipe

    recipe = load_recipe(MICRO, SETS, registry, build=False)
    built = assemble(
        recipe, registry, parts=["data"], splits=["train", "test"], resolutions=[16, 32]
    )
    test, train = built.test_data, built.train_data
    test.set_epoch(0)
    train.set_epoch(0)
    return {
        "test": test,
        "test_images": [test.images_uint8(i, 32) for i in range(N)],
        "test_captions": [test[i]["caption"] for i in range(N)],  # epoch 0, as a run draws them
        "train_images": [train.images_uint8(i, 32) for i in range(N)],
        "train_captions": [train[i]["caption"] for i in range(N)],
    }


@pytest.fixture(scope="module")
def oracle_own(registry, shapes):
    """The oracle's own accuracy on the test images against their ground truth."""
    from t2i_stages.evaluation import EvalContext, stream_from_real
    from t2i_stages.evaluation.slots import build_metrics, make_slot

    built = build_metrics([make_slot("attribute_accuracy", {}, registry)], registry, "cpu")
    ctx = EvalContext(registry=registry, test_data=shapes["test"], batch_size=8, log=_quiet)
    report = evaluate_stream(ctx, built, stream_from_real(shapes["test"], N, 8))
    return report["results"]["attribute_accuracy"]["values"]


def score(folder: Path, captions: Path | None = None, metrics=METRICS, **kw) -> dict:
    return evaluate_images(
        folder, captions, recipe=MICRO, overrides=SETS, metrics=metrics, log=_quiet, **kw
    )


@pytest.fixture(scope="module")
def test_split_folder(shapes, tmp_path_factory):
    base = tmp_path_factory.mktemp("given")
    return write_folder(base / "test", shapes["test_images"], shapes["test_captions"], sidecar=True)


@pytest.fixture(scope="module")
def floor(shapes, tmp_path_factory):
    """FD of the train split's images against the test split: an independent sample of the
    same distribution, the sampling floor at N images."""
    folder = write_folder(
        tmp_path_factory.mktemp("floor"), shapes["train_images"], shapes["train_captions"]
    )
    report = score(folder, folder / "captions.jsonl", METRICS[1:])
    return {k: report["results"][m]["values"][k] for k, m in FDS.items()}


@pytest.fixture(scope="module")
def scored(test_split_folder):
    return score(test_split_folder, test_split_folder / "captions.jsonl", batch_size=8)


def _values(report: dict, metric: str = "attribute_accuracy") -> dict[str, float]:
    return report["results"][metric]["values"]


def _same(a: dict[str, float], b: dict[str, float], tol: float = 0.0) -> list[str]:
    """The names where a and b differ by more than tol (NaN equals NaN)."""
    assert a.keys() == b.keys()
    return [
        k
        for k in a
        if not (math.isnan(a[k]) and math.isnan(b[k])) and not abs(a[k] - b[k]) <= tol + 1e-12
    ]


def _shared_caption_share(shapes: dict) -> float:
    """The share of the images whose caption another test image also has."""
    test = shapes["test"]
    owners: dict[str, set[int]] = {}
    for i in range(N):
        for c in test.captions(i):
            owners.setdefault(caption_key(c), set()).add(i)
    return sum(len(owners[caption_key(c)]) > 1 for c in shapes["test_captions"]) / N


def test_the_test_split_as_images_scores_like_the_oracle(scored, oracle_own, shapes):
    """The JSONL has no index, so each image is paired by its caption. An image whose caption
    another test image also has may be paired with that one instead: its mentioned attributes
    are the same (the caption states them), so ``all_mentioned`` cannot move, and a value that
    also checks unmentioned attributes moves by at most the share of such images. Both sides
    are read in the same batches of 8, so the oracle's readings are the same numbers."""
    assert 0.3 < oracle_own["attr_acc[all_mentioned]"] < 0.9  # an imperfect oracle
    values = _values(scored)
    assert values["attr_acc[all_mentioned]"] == oracle_own["attr_acc[all_mentioned]"]
    assert _same(values, oracle_own, tol=_shared_caption_share(shapes)) == []
    real = scored["results"]["attribute_accuracy"]["details"]["real_images"]
    assert real["all_mentioned"] == oracle_own["attr_acc[all_mentioned]"]
    p = scored["protocol"]
    assert p["pairing"]["by_caption"] == N and p["pairing"]["distinct_test_images"] == N
    assert p["input"]["read"] == N and p["input"]["skipped"] == 0
    assert p["input"]["sizes"] == {"32x32": N} and p["input"]["resized"] == 0
    assert p["num_samples"] == N and p["resolution"] == 32 and p["noise_seed"] is None
    assert p["reference"]["recipe"] == str(MICRO) and p["reference"]["test_images"] == N
    assert p["source"] == "t2i-stages eval --images"


def test_the_test_split_as_images_has_an_fd_near_zero(scored, floor, shapes, tmp_path):
    """Identical pixels give identical features: the FD is the matrix square root's rounding
    (measured about 1e-11 here). 1e-4 of the sampling floor (an independent sample of the same
    images' distribution: FD[oracle] about 16) is far above that rounding and far below what
    a real difference gives: the same images in BGR order, checked here, or even a bicubic
    32 -> 48 -> 32 px round trip (about 4e-4 of the floor)."""
    for key, metric in FDS.items():
        assert floor[key] > 0
        assert abs(_values(scored, metric)[key]) <= 1e-4 * floor[key], key
    bgr = write_folder(tmp_path / "bgr", shapes["test_images"], shapes["test_captions"], bgr=True)
    swapped = score(bgr, bgr / "captions.jsonl", METRICS[1:])
    for key, metric in FDS.items():
        assert _values(swapped, metric)[key] > 1e-4 * floor[key], key
    assert "real test images" in scored["results"]["fid"]["protocol"]["reference"]


def test_an_index_pairs_exactly_and_shuffled_captions_score_near_chance(
    shapes, oracle_own, tmp_path
):
    imgs, caps = shapes["test_images"], shapes["test_captions"]
    indexed = write_folder(tmp_path / "indexed", imgs, caps, index=True)
    report = score(indexed, indexed / "captions.jsonl", METRICS[:1], batch_size=8)
    assert _same(_values(report), oracle_own) == []
    assert report["protocol"]["pairing"]["by_index"] == N
    # each image scored against the next image's caption: the ground truth follows the caption
    shuffled = write_folder(tmp_path / "shuffled", imgs, caps[1:] + caps[:1])
    wrong = _values(score(shuffled, shuffled / "captions.jsonl", METRICS[:1]))
    assert wrong["attr_acc[all_mentioned]"] < 0.1 < oracle_own["attr_acc[all_mentioned]"] - 0.2


def test_sidecar_captions_give_the_same_numbers(test_split_folder, scored):
    report = score(test_split_folder, None, batch_size=8)
    for metric in ("attribute_accuracy", "fid", "fid#2"):
        assert _same(_values(report, metric), _values(scored, metric)) == []
    assert report["protocol"]["input"]["captions"].startswith("sidecar .txt")


def test_metrics_json_and_md_are_written_like_a_runs(scored):
    folder = Path(scored["folder"])
    assert folder.parent.name == "evals" and folder.name.startswith("attribute_accuracy+fid-n200-")
    on_disk = json.loads((folder / "metrics.json").read_text())
    assert on_disk["results"]["fid"]["values"] == scored["results"]["fid"]["values"]
    assert {"torch", "numpy"} <= set(on_disk["protocol"]["versions"])
    assert on_disk["plugins"]["metric/attribute_accuracy"]["package"] == "t2i-stages"
    md = (folder / "metrics.md").read_text()
    assert md.startswith("# Evaluation of the images in ") and "| FD[oracle] |" in md
    assert "read 200 of 200 (skipped 0)" in md


def test_other_sizes_are_resized_to_the_reference_and_recorded(shapes, floor, tmp_path):
    """A bicubic 32 -> 48 px upscale, brought back to 32 px by the metrics' resizer, changes
    pixels by a few levels: the oracle reads the images about as it reads the originals (the
    paired test images, its real-image reading; within 5 of the 100) and the FD stays a small
    fraction (1%) of the sampling floor at 200 images (measured: 0.04%)."""
    imgs, caps = shapes["test_images"][:100], shapes["test_captions"][:100]
    folder = write_folder(tmp_path / "big", imgs, caps, size=(48, 48))
    Image.fromarray(imgs[0]).resize((40, 32)).save(folder / "0000.png")  # not square
    report = score(folder, folder / "captions.jsonl")
    given = report["protocol"]["input"]
    assert given["sizes"] == {"48x48": 99, "40x32": 1}
    assert given["resized"] == 100 and given["cropped"] == 1
    assert "centre-cropped" in given["resizer"] and "bicubic" in given["resizer"]
    assert report["protocol"]["resolution"] == 32
    result = report["results"]["attribute_accuracy"]
    fake, real = result["values"]["attr_acc[all_mentioned]"], result["details"]["real_images"]
    assert abs(fake - real["all_mentioned"]) <= 0.05
    assert 0 < _values(report, "fid")["FD[oracle]"] < 0.01 * floor["FD[oracle]"]


def _damaged_folder(shapes, root: Path) -> Path:
    """10 good images, a grey one (read as RGB), and bad entries of every kind."""
    folder = write_folder(root, shapes["test_images"][:10], shapes["test_captions"][:10])
    good = (folder / "0000.png").read_bytes()
    (folder / "corrupt.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    Image.fromarray(shapes["test_images"][3][:, :, 0]).save(folder / "grey.png")  # mode L
    Image.fromarray(np.full((32, 32), 40000, dtype=np.uint16)).save(folder / "deep.png")
    lines = (folder / "captions.jsonl").read_text().splitlines()
    lines[2:2] = [
        json.dumps({"image": "corrupt.png", "caption": "a red star"}),
        "{not json",
        json.dumps({"image": "0005.png"}),  # no caption
        json.dumps({"file": "grey.png", "text": shapes["test_captions"][3]}),  # the aliases
        json.dumps({"image": "missing.png", "caption": "a blue circle"}),
        json.dumps({"image": "empty.png", "caption": "a blue circle"}),
        json.dumps({"image": "text.png", "caption": "a blue circle"}),
        json.dumps({"image": "deep.png", "caption": "a blue circle"}),
    ]
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n\n")
    return folder


def test_bad_files_are_named_and_skipped_and_the_metrics_still_come_out(shapes, tmp_path):
    folder = _damaged_folder(shapes, tmp_path / "damaged")
    with pytest.warns(DataWarning, match=r"skipped 7 of 18 samples with bad data: .*corrupt\.png"):
        report = score(folder, folder / "captions.jsonl")
    assert set(report["results"]) == {"attribute_accuracy", "fid", "fid#2"}
    for result in report["results"].values():
        assert all(math.isfinite(v) for k, v in result["values"].items() if "position" not in k)
    given = report["protocol"]["input"]
    assert given["read"] == 11 and given["skipped"] == 7 and given["considered"] == 18
    assert given["modes"] == {"RGB": 10, "L": 1}
    reasons = {Path(s["file"]).name: s["reason"] for s in given["skipped_files"]}
    assert "cannot be decoded" in reasons["corrupt.png"]
    assert "cannot be decoded" in reasons["text.png"]
    assert reasons["empty.png"] == "image file is empty (0 bytes)"
    assert reasons["missing.png"] == "image file missing"
    assert reasons["deep.png"].startswith("mode I")  # 16-bit grey
    assert reasons["captions.jsonl:4"].startswith("caption line is not JSON")
    assert reasons["captions.jsonl:5"] == "no caption for 0005.png"


def test_strict_stops_at_the_first_bad_file(shapes, tmp_path):
    folder = _damaged_folder(shapes, tmp_path / "damaged")
    with pytest.raises(BadDataError, match=r"corrupt\.png: image cannot be decoded .*strict"):
        read_image_folder(folder, folder / "captions.jsonl", strict=True)


def test_the_cli_prints_one_warning_line_naming_the_corrupt_file(shapes, tmp_path, capsys):
    folder = _damaged_folder(shapes, tmp_path / "damaged")
    args = ["eval", "--images", str(folder), "--captions", str(folder / "captions.jsonl"),
            "--recipe", str(MICRO), "--metrics", "fid:extractor=random", "--out",
            str(tmp_path / "out")] + [a for s in SETS for a in ("--set", s)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # the CLI shows it itself, as one line
        assert main(args) == 0
    out, err = capsys.readouterr()
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "corrupt.png" in warned[0] and "skipped 7 of 18" in warned[0]
    assert "| FD[random] |" in out
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["protocol"]["input"]["skipped"] == 7


def test_a_sidecar_image_without_a_caption_is_reported(shapes, tmp_path):
    folder = write_folder(
        tmp_path / "side", shapes["test_images"][:4], shapes["test_captions"][:4], sidecar=True
    )
    (folder / "0002.txt").unlink()
    (folder / "0003.txt").write_text("\n  \n")
    with pytest.warns(DataWarning, match=r"0002\.png: no caption \(0002\.txt missing\)"):
        given = read_image_folder(folder)
    assert [e.path.name for e in given.entries] == ["0000.png", "0001.png"]
    assert given.bad.problems[1] == (str(folder / "0003.txt"), "caption file is empty")


def test_captions_file_format(tmp_path):
    """Blank lines are skipped, "file"/"text" are the keys' aliases, whitespace in a caption
    is collapsed, an index must be a non-negative integer, num_samples keeps the first N."""
    for name in ("a", "b", "c", "d"):
        Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / f"{name}.png")
    (tmp_path / "c.jsonl").write_text(
        '\n{"image": "a.png", "caption": "a  red\\nstar", "index": 3}\n'
        '{"file": "b.png", "text": "a blue circle"}\n'
        '{"image": "c.png", "caption": "x", "index": -1}\n'
        '{"image": "c.png", "caption": "x", "index": true}\n'
        '["a.png", "x"]\n'
        '{"image": "d.png", "caption": "a green heart"}\n'
    )
    with pytest.warns(DataWarning, match="skipped 3 of 6"):
        given = read_image_folder(tmp_path, tmp_path / "c.jsonl")
    assert [(e.path.name, e.caption, e.index) for e in given.entries] == [
        ("a.png", "a red star", 3), ("b.png", "a blue circle", None),
        ("d.png", "a green heart", None),
    ]  # fmt: skip
    assert given.entries[0].where == f"{tmp_path / 'c.jsonl'}:2"
    assert [r for _, r in given.bad.problems][-1].startswith('caption line needs {"image"')
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # nothing bad among the first two
        assert len(read_image_folder(tmp_path, tmp_path / "c.jsonl", limit=2)) == 2


def test_an_index_outside_the_split_names_the_line(tmp_path):
    for name in ("a", "b"):
        Image.new("RGB", (32, 32)).save(tmp_path / f"{name}.png")
    (tmp_path / "c.jsonl").write_text(
        '{"image": "a.png", "caption": "a red star", "index": 0}\n'
        f'{{"image": "b.png", "caption": "a red star", "index": {N}}}\n'
    )
    with pytest.raises(T2IError, match=rf"c\.jsonl:2: index {N} is outside .*\({N} images\)"):
        score(tmp_path, tmp_path / "c.jsonl")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_errors_are_one_line_with_exit_2(tmp_path, micro_run_dir, capsys):
    recipe = ["--recipe", str(MICRO)]
    assert main(["eval"]) == 2
    assert "give RUN_DIR" in _one_error_line(capsys)
    assert main(["eval", str(micro_run_dir), "--images", str(tmp_path)]) == 2
    assert "not both" in _one_error_line(capsys)
    assert main(["eval", "--images", str(tmp_path / "nope"), *recipe]) == 2
    assert f"{tmp_path / 'nope'}: no such folder" in _one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["eval", "--images", str(tmp_path / "empty"), *recipe]) == 2
    assert "no images in the folder" in _one_error_line(capsys)
    Image.new("RGB", (8, 8)).save(tmp_path / "empty" / "lonely.png")  # no caption
    (tmp_path / "empty" / "broken.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "c.jsonl").write_text(
        '{"image": "gone.png", "caption": "a red star"}\n'
        '{"image": "broken.png", "caption": "a red star"}\n{oops\n'
    )
    args = ["eval", "--images", str(tmp_path / "empty"), "--captions", str(tmp_path / "c.jsonl")]
    assert main([*args, *recipe]) == 2
    line = _one_error_line(capsys)
    assert "c.jsonl names no readable image with a caption (3 looked at" in line
    assert "gone.png: image file missing" in line
    assert main(["eval", "--images", str(tmp_path / "empty"), *recipe]) == 2
    assert "no readable image with a caption" in _one_error_line(capsys)
    assert main([*args[:3], "--captions", str(tmp_path / "none.jsonl"), *recipe]) == 2
    assert "none.jsonl: no such captions file" in _one_error_line(capsys)
    assert main(args) == 2
    assert "exactly one of --recipe RECIPE and --run RUN_DIR" in _one_error_line(capsys)
    assert main([*args, *recipe, "--run", str(micro_run_dir)]) == 2
    assert "exactly one of" in _one_error_line(capsys)
    assert main(["eval", str(micro_run_dir), "--captions", "c.jsonl"]) == 2
    assert "--captions goes with --images DIR" in _one_error_line(capsys)
    assert main([*args, *recipe, "--seed", "3"]) == 2
    assert "--seed has no use with --images" in _one_error_line(capsys)


def test_images_against_a_trained_run(micro_run_dir, registry, tmp_path, capsys):
    """--run: the run's recipe and its trained matcher (the weights its own evaluation used);
    the defaults of the run's recipe (micro: FD[matcher], R-precision[run])."""
    from t2i_stages.build import assemble
    from t2i_stages.recipe import load_recipe

    recipe = load_recipe(MICRO, [], registry, build=False)
    test = assemble(recipe, registry, parts=["data"], splits=["test"], resolutions=[16, 32])
    test = test.test_data
    test.set_epoch(0)
    n = len(test)
    folder = write_folder(
        tmp_path / "micro",
        [test.images_uint8(i, 32) for i in range(n)],
        [test[i]["caption"] for i in range(n)],
        sidecar=True,
    )
    assert main(["eval", "--images", str(folder), "--run", str(micro_run_dir)]) == 0
    wrote = capsys.readouterr().out.strip().splitlines()[-1]
    out = Path(wrote.removeprefix("wrote ")).parent
    assert out.parent == folder / "evals"  # by the images, not in the run folder
    report = json.loads((out / "metrics.json").read_text())
    trained = json.loads((micro_run_dir / "metrics.json").read_text())
    fid, fid_trained = report["results"]["fid"], trained["results"]["fid"]
    assert fid["protocol"]["weights_sha256"] == fid_trained["protocol"]["weights_sha256"]
    assert abs(fid["values"]["FD[matcher]"]) < 1e-3 * fid_trained["values"]["FD[matcher]"]
    assert "R-precision[run]" in report["results"]["r_precision"]["values"]
    ref = report["protocol"]["reference"]
    assert ref["run"] == str(micro_run_dir) and ref["step"] == trained["step"]
    assert ref["matcher"].startswith("damsm: the run's trained matcher")
    assert report["protocol"]["pairing"]["by_caption"] == n
