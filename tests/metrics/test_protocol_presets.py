"""The papers' protocols as presets (``eval.protocol``): what each resolves to, what a recipe and
the command line override, the preset block in metrics.json, the passes over the test split, and
the missing-asset messages that stop an evaluation before it generates anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from t2i_stages.cli.main import main
from t2i_stages.recipe import load_recipe
from t2i_stages.recipe.protocols import PRESETS, WHOLE_SPLIT, passes, preset_block
from t2i_stages.recipe.schema import EvalConfig
from t2i_stages.recipe.validate import resolved_dict

DOCS = Path(__file__).parents[2] / "docs" / "metrics.md"
MICRO = Path(__file__).parents[1] / "training" / "micro.yaml"


def _micro_without_eval_choices(tmp_path: Path, **eval_fields) -> Path:
    """micro.yaml with no eval.num_samples (so that the preset's count shows) plus ``eval_fields``."""
    data = yaml.safe_load(MICRO.read_text())
    data["eval"].pop("num_samples")
    data["eval"].update(eval_fields)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_validates_and_resolves_to_its_slots(name, registry, tmp_path):
    preset = PRESETS[name]
    recipe = load_recipe(_micro_without_eval_choices(tmp_path, protocol=name), [], registry)
    cfg = recipe.eval
    assert cfg.num_samples == preset.num_samples
    assert [(s.type, s.params) for s in cfg.metrics] == [
        (m.type, dict(m.params)) for m in preset.metrics
    ]
    for slot, fixed in zip(cfg.metrics, preset.metrics, strict=True):
        assert slot.resolved is not None  # validated against the plugin like a recipe slot
        resolved = slot.resolved.model_dump()
        assert {k: resolved[k] for k in fixed.params} == dict(fixed.params)
        assert fixed.source  # every slot says where its choices come from
    assert passes(cfg) == preset.passes
    block = preset_block(cfg, registry)
    assert block["name"] == name and block["overridden_by_recipe"] == []
    assert [m["type"] for m in block["fixed"]["metrics"]] == [m.type for m in preset.metrics]
    assert block["fixed"]["num_samples"] == preset.num_samples


def test_the_presets_fix_what_the_papers_released_code_did():
    fid = {n: [m.params for m in p.metrics if m.type == "fid"] for n, p in PRESETS.items()}
    # DM-GAN's and DF-GAN's FID is pytorch-fid at 802da39: torchvision's ImageNet Inception
    assert fid["dmgan"][0]["extractor"] == fid["dfgan"][0]["extractor"] == "imagenet_inception"
    assert fid["dmgan"][1]["extractor"] == "fid_inception"  # its 'TF FID' column's weights
    assert fid["clean"][0]["extractor"] == "inception"  # clean-fid's TorchScript
    # DM-GAN saved PNGs (truncating uint8 cast) and resized them with PIL; DF-GAN scored G's floats
    assert (fid["dmgan"][0]["quantize"], fid["dmgan"][0]["resize"]) == ("floor", "pil_bilinear")
    assert (fid["dfgan"][0]["quantize"], fid["dfgan"][0]["resize"]) == ("none", "torch_bilinear")
    cmd = next(m.params for m in PRESETS["grgan"].metrics if m.type == "cmd")
    assert cmd["clip_folder"].endswith("clip-vit-base-patch32") and cmd["expect_vit_b32"]
    assert (cmd["image_scale"], cmd["text_scale"], cmd["clip_normalize"]) == (10.0, 1.0, False)
    assert cmd["captions"] == "all" and cmd["resize"] == "pil_bilinear"
    for name in ("attngan", "dmgan", "dfgan", "grgan"):
        rp = [m.params for m in PRESETS[name].metrics if m.type == "r_precision"]
        assert [p["encoder"] for p in rp] == ["run", "clip"]  # DAMSM and CLIP-R-precision
        assert all(p["candidates"] == 100 and p["folds"] == 10 for p in rp)
    assert (PRESETS["dmgan"].num_samples, PRESETS["dmgan"].passes) == (30000, 11)
    assert (PRESETS["grgan"].num_samples, PRESETS["grgan"].passes) == (30000, 1)
    assert PRESETS["attngan"].num_samples == WHOLE_SPLIT and PRESETS["attngan"].passes == 1
    assert not any(m.type == "inception_score" for m in PRESETS["dfgan"].metrics)


def test_explicit_num_samples_and_metrics_win_over_the_preset(registry):
    cfg = EvalConfig(
        protocol="dmgan",
        num_samples=100,
        metrics=[{"type": "fid", "params": {"extractor": "random"}}, {"type": "kid"}],
    )
    assert cfg.num_samples == 100
    types = [s.type for s in cfg.metrics]
    # the recipe's fid replaces both of the preset's; its kid is added; the rest are the preset's
    assert types == ["fid", "kid", "inception_score", "r_precision", "r_precision"]
    assert cfg.metrics[0].params == {"extractor": "random"}
    block = preset_block(cfg, registry, {"metrics": ["fid:extractor=random"], "num_samples": 8})
    assert block["overridden_by_recipe"] == ["num_samples", "metrics.fid"]
    assert block["added_by_recipe"] == ["kid"]
    assert block["overridden_by_command_line"] == ["metrics", "num_samples"]
    # a recipe that writes the preset's own value overrides nothing
    same = EvalConfig(protocol="dmgan", num_samples=30000)
    assert preset_block(same, registry)["overridden_by_recipe"] == []


def test_no_protocol_leaves_the_eval_section_as_it_was(registry):
    assert EvalConfig().num_samples == 2000 and EvalConfig().metrics == []
    recipe = load_recipe(MICRO, [], registry)
    assert recipe.eval.protocol is None and recipe.eval.metrics == []
    assert recipe.eval.num_samples == 16
    assert preset_block(recipe.eval, registry) is None and passes(recipe.eval) == 1


def test_a_resolved_recipe_validates_to_the_same_preset_values(registry, tmp_path):
    recipe = load_recipe(_micro_without_eval_choices(tmp_path, protocol="grgan"), [], registry)
    resolved = tmp_path / "recipe.resolved.yaml"  # what a run folder holds
    resolved.write_text(yaml.safe_dump(resolved_dict(recipe)))
    again = load_recipe(resolved, [], registry)
    assert again.eval.num_samples == recipe.eval.num_samples == 30000
    assert [s.resolved for s in again.eval.metrics] == [s.resolved for s in recipe.eval.metrics]
    assert preset_block(again.eval, registry)["overridden_by_recipe"] == []


def test_passes_go_round_the_test_split_with_new_captions(micro_run_dir, registry):
    from t2i_stages.api import load_run
    from t2i_stages.evaluation import stream_samples
    from t2i_stages.types import GeneratorOutput

    run = load_run(micro_run_dir, registry=registry)
    test = registry.build(
        "dataset", run.recipe.data.dataset, split="test", resolutions=run.generator.resolutions
    )
    n = len(test)

    def as_real(batch, z, eps):  # the test images themselves, as if generated
        images = batch["images"]
        last = images[-1] if isinstance(images, list | tuple) else images
        return GeneratorOutput([last], [], None, None)

    stream = stream_samples(test, as_real, 1, 0, 2 * n + 5, 8, passes=3)
    batches = list(stream)
    assert stream.num_samples == sum(len(b) for b in batches) == 2 * n + 5
    indices = [i for b in batches for i in b.indices]
    assert indices == list(range(n)) * 2 + list(range(5))
    captions = [c for b in batches for c in b.captions]
    assert captions[:n] != captions[n : 2 * n]  # pass 1 draws the captions of epoch 1
    assert "3 passes" in stream.protocol["images"]
    capped = stream_samples(test, as_real, 1, 0, 10 * n, 8, passes=2)
    assert capped.num_samples == 2 * n
    assert stream_samples(test, as_real, 1, 0, 10 * n, 8).num_samples == n  # as before


def _copy_run_with_eval(src: Path, dst: Path, **eval_fields) -> Path:
    shutil.copytree(src, dst)
    path = dst / "recipe.resolved.yaml"
    data = yaml.safe_load(path.read_text())
    data["eval"].update(eval_fields)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return dst


def test_a_run_under_a_preset_records_it_in_metrics_json(micro_run_dir, tmp_path, capsys):
    run = _copy_run_with_eval(
        micro_run_dir,
        tmp_path / "run",
        protocol="dfgan",
        num_samples=12,
        metrics=[
            {"type": "fid", "params": {"extractor": "random", "quantize": "none", "kid": False}},
            {"type": "r_precision", "params": {"candidates": 10, "folds": 2}},
        ],
    )
    assert main(["eval", str(run), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    block = report["protocol_preset"]
    assert block["name"] == "dfgan" and block["applied_by"] == "eval.protocol"
    assert block["overridden_by_recipe"] == ["num_samples", "metrics.fid", "metrics.r_precision"]
    assert [m["type"] for m in block["fixed"]["metrics"]] == ["fid", "r_precision", "r_precision"]
    assert block["fixed"]["metrics"][0]["params"]["extractor"] == "imagenet_inception"
    assert all(m["source"] for m in block["fixed"]["metrics"]) and block["notes"]
    assert block["fixed"]["passes"] == 10 and "DF-GAN" in block["fixed"]["samples_source"]
    fid = report["results"]["fid"]
    assert fid["protocol"]["generated_pixels"].startswith("none:")
    assert report["protocol"]["num_samples"] == 12
    assert "Protocol preset: dfgan" in (tmp_path / "out" / "metrics.md").read_text()


def test_eval_protocol_flag_with_command_line_metrics(micro_run_dir, tmp_path):
    out = tmp_path / "out"
    rc = main(
        ["eval", str(micro_run_dir), "--protocol", "grgan", "--metrics",
         "fid:extractor=random:quantize=floor", "--num-samples", "8", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    report = json.loads((out / "metrics.json").read_text())
    block = report["protocol_preset"]
    assert block["name"] == "grgan" and block["applied_by"] == "eval --protocol"
    assert block["overridden_by_command_line"] == ["metrics", "num_samples"]
    assert block["command_line"]["metrics"] == ["fid:extractor=random:quantize=floor"]
    assert list(report["results"]) == ["fid"]  # --metrics wins over the preset's list
    assert report["results"]["fid"]["params"]["random_dim"] == 64  # resolved params
    assert report["protocol"]["num_samples"] == 8
    assert report["results"]["fid"]["protocol"]["generated_pixels"].startswith("floor:")


def test_the_end_of_training_evaluation_records_the_preset(registry, tmp_path):
    from t2i_stages.training import train

    overrides = [
        "eval.protocol=grgan",
        "train.max_steps=2",
        "eval.num_samples=8",
        "eval.metrics=[{type: fid, params: {extractor: random, quantize: floor, kid: false}}, "
        "{type: r_precision, params: {candidates: 4, folds: 2}}, "
        "{type: cmd, params: {space: matcher, captions: all, quantize: floor}}]",
    ]
    recipe = load_recipe(MICRO, overrides, registry)
    assert [s.type for s in recipe.eval.metrics][:3] == ["fid", "r_precision", "cmd"]
    assert [s.type for s in recipe.eval.metrics][3:] == ["inception_score"]  # the preset's
    # the preset's IS needs the TF Inception, absent here: the one metric left to the preset
    recipe.eval.metrics = recipe.eval.metrics[:3]
    train(recipe, registry, tmp_path / "run", log=lambda *a, **k: None)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    block = report["protocol_preset"]
    assert block["name"] == "grgan" and block["applied_by"] == "eval.protocol"
    assert set(block["overridden_by_recipe"]) == {
        "num_samples", "metrics.cmd", "metrics.fid", "metrics.inception_score",
        "metrics.r_precision",
    }  # fmt: skip
    assert block["overridden_by_command_line"] == []
    assert report["results"]["cmd"]["protocol"]["generated_pixels"].startswith("floor:")
    assert "CMD (script)" in report["results"]["cmd"]["values"]


@pytest.mark.parametrize(
    ("name", "missing", "place"),
    [
        ("attngan", "inception-2015-12-05.pt", "cleanfid"),  # its IS: the TF graph
        ("dmgan", "inception_v3_google-0cc3c7bd.pth", "torchvision"),  # pytorch-fid 802da39
        ("dfgan", "inception_v3_google-0cc3c7bd.pth", "torchvision"),
        ("grgan", "clip-vit-base-patch32", "hf"),  # CMD's CLIP ViT-B/32
        ("clean", "inception-2015-12-05.pt", "cleanfid"),
    ],
)
def test_a_missing_asset_stops_the_preset_before_any_image(
    name, missing, place, micro_run_dir, tmp_path, monkeypatch, capsys
):
    home = tmp_path / "home"
    monkeypatch.setenv("T2I_STAGES_HOME", str(home))
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    generated = []
    monkeypatch.setattr(
        "t2i_stages.evaluation.samples.SampleStream._make_batch",
        lambda *a, **k: generated.append(1),
    )
    assert main(["eval", str(micro_run_dir), "--protocol", name, "--num-samples", "4"]) == 2
    # (the shapes dataset renders its test split into the new home first, on stderr)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1 and missing in err[0] and str(home / place) in err[0]
    assert "nothing is downloaded" in err[0]
    assert generated == []  # failed before the first image


def test_the_pytorch_fid_file_is_named_when_dmgan_reaches_it(
    micro_run_dir, tmp_path, monkeypatch, capsys
):
    """With torchvision's file in place, DM-GAN's second FID (its TF-FID weights) asks for
    pytorch-fid's pt_inception file, by name and place."""
    home = tmp_path / "home"
    (home / "torchvision").mkdir(parents=True)
    (home / "torchvision" / "inception_v3_google-0cc3c7bd.pth").write_bytes(b"")
    monkeypatch.setenv("T2I_STAGES_HOME", str(home))
    assert main(["eval", str(micro_run_dir), "--protocol", "dmgan", "--num-samples", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pt_inception-2015-12-05-6726825d.pth" in err
    assert str(home / "pytorch-fid" / "pt_inception-2015-12-05-6726825d.pth") in err


def preset_table() -> str:
    """The docs' table of every preset's fields, rendered from the presets themselves."""
    rows = ["| preset | field | value | from |", "|---|---|---|---|"]
    for p in PRESETS.values():
        rows.append(f"| `{p.name}` | samples | {p.samples()} | {p.samples_source} |")
        for m in p.metrics:
            params = ", ".join(f"{k}: {v}" for k, v in m.params.items())
            note = f" ({m.note})" if m.note else ""
            rows.append(f"| `{p.name}` | `{m.type}` | {params} | {m.source}{note} |")
        for note in p.notes:
            rows.append(f"| `{p.name}` | note | | {note} |")
    return "\n".join(rows)


def test_the_docs_table_is_the_presets():
    text = DOCS.read_text(encoding="utf-8")
    assert "## Protocol presets" in text
    assert preset_table() in text, "docs/metrics.md's preset table is stale:\n" + preset_table()


def test_the_stream_keeps_the_generated_floats_beside_the_uint8(micro_run_dir, registry):
    from t2i_stages.api import load_run
    from t2i_stages.evaluation import stream_samples
    from t2i_stages.types import GeneratorOutput

    run = load_run(micro_run_dir, registry=registry)
    test = registry.build(
        "dataset", run.recipe.data.dataset, split="test", resolutions=run.generator.resolutions
    )
    value = 100.7 / 127.5 - 1  # (x + 1) * 127.5 = 100.7

    def flat(batch, z, eps):
        return GeneratorOutput([torch.full((z.shape[0], 3, 32, 32), value)], [], None, None)

    batch = next(iter(stream_samples(test, flat, 1, 0, 4, 4)))
    assert batch.fake_float is not None and batch.fake_float.dtype == torch.float32
    assert int(batch.pixels("fake", "round")[0, 0, 0, 0]) == 101
    assert int(batch.pixels("fake", "floor")[0, 0, 0, 0]) == 100
    assert batch.pixels("fake", "floor").dtype == torch.uint8
    none = batch.pixels("fake", "none")
    assert none.dtype == torch.float32 and float(none[0, 0, 0, 0]) == pytest.approx(100.7, abs=1e-4)
    assert torch.equal(batch.pixels("real", "none"), batch.real)  # real images: as stored
