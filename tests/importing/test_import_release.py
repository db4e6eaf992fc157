"""The import path every family shares: legacy files read with weights_only only, key maps,
one-line fit errors, `auto`, the run folder, and what accepts it (load_run, generate, export,
train.init_from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from toy_release import RELEASE, reference_names

from t2i_stages.api import load_run
from t2i_stages.cli.main import main
from t2i_stages.errors import T2IError
from t2i_stages.importing.api import import_release
from t2i_stages.importing.legacy import LegacyFileError, read_release_file


def test_a_legacy_file_imports_into_a_run_that_load_run_rebuilds(registry, release, tmp_path):
    files, ours = release
    out = import_release("toy", files, tmp_path / "run", registry=registry, log=lambda m: None)
    run = load_run(out, registry=registry)
    got = run.generator.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ours.items())
    record = json.loads((out / "import.json").read_text())
    assert record["release"] == RELEASE and record["dropped"]["generator"] == ["net.unused.weight"]
    assert set(record["files"]) == set(map(str, files))
    assert all(len(digest) == 64 for digest in record["files"].values())
    assert (out / "vocab.json").is_file() and (out / "import.recipe.yaml").is_file()


def test_auto_tells_the_family_and_the_cli_writes_the_folder(
    registry, release, tmp_path, monkeypatch, capsys
):
    import t2i_stages.importing.api as api

    monkeypatch.setattr(api, "load_registry", lambda: registry)
    files, _ = release
    argv = ["import", "auto", *map(str, files), "--set", "eval.num_samples=7"]
    assert main([*argv, "--out", str(tmp_path / "auto")]) == 0
    assert f"toy ({RELEASE})" in capsys.readouterr().err
    resolved = yaml.safe_load((tmp_path / "auto" / "recipe.resolved.yaml").read_text())
    assert resolved["eval"]["num_samples"] == 7  # --set reaches the importer's recipe
    assert main([*argv[:-2], "--set", "eval.num_sample=7", "--out", str(tmp_path / "bad")]) == 2
    assert "did you mean 'num_samples'" in capsys.readouterr().err
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2)}, other)
    assert main(["import", "auto", str(other), "--out", str(tmp_path / "x")]) == 2
    assert "no importer recognises other.pth" in capsys.readouterr().err


def test_a_tensor_that_does_not_fit_is_one_line_naming_the_file_and_the_release(
    registry, release, tmp_path
):
    (path, encoder), ours = release
    bad = reference_names(ours)
    key = next(k for k in bad if k.endswith("fc.0.weight"))
    bad[key] = torch.zeros(3, 3)
    bad.pop(next(k for k in bad if k.startswith("net.img1.")))
    wrong = tmp_path / "wrong.pth"
    torch.save(bad, wrong, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError) as info:
        import_release(
            "toy", [wrong, encoder], tmp_path / "run", registry=registry, log=lambda m: None
        )
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{wrong}: does not fit {RELEASE} (generator): ")
    assert "has shape (3, 3) where" in line and "'heads.1.conv.weight' is missing" in line
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing half-written


def test_an_unknown_key_names_the_file_and_the_release(registry, release, tmp_path):
    (path, encoder), ours = release
    extra = {**reference_names(ours), "net.mystery.weight": torch.zeros(1)}
    f = tmp_path / "extra.pth"
    torch.save(extra, f)
    with pytest.raises(
        T2IError, match=r"1 key\(s\) are not in the toy release .*'net.mystery.weight'"
    ):
        import_release("toy", [f, encoder], tmp_path / "run", registry=registry, log=lambda m: None)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_file_with_pickled_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "netG.pth"
    torch.save(
        {"fc.weight": torch.zeros(2), "x": _Payload(marker)},
        evil,
        _use_new_zipfile_serialization=False,
    )
    with pytest.raises(LegacyFileError) as info:
        read_release_file(evil)
    assert str(info.value).startswith(
        f"{evil}: refused: it holds pickled objects other than weights"
    )
    assert not marker.exists()
    call, args = _Payload(marker).__reduce__()  # the payload is real: what unpickling calls
    call(*args)
    assert marker.exists()


def test_damaged_and_missing_files_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"\x80\x02not a pickle")
    with pytest.raises(LegacyFileError, match=f"^{broken}: not a readable torch file"):
        read_release_file(broken)
    with pytest.raises(LegacyFileError, match="no such file"):
        read_release_file(tmp_path / "absent.pth")


def test_an_existing_run_is_never_overwritten(registry, release, tmp_path):
    files, _ = release
    out = import_release("toy", files, tmp_path / "run", registry=registry, log=lambda m: None)
    with pytest.raises(T2IError, match="holds a run already"):
        import_release("toy", files, out, registry=registry, log=lambda m: None)


def test_an_imported_run_generates_exports_with_parity_and_starts_a_fine_tune(
    registry, release, tmp_path
):
    from t2i_stages.recipe import load_recipe
    from t2i_stages.training import Trainer

    files, ours = release
    out = import_release("toy", files, tmp_path / "run", registry=registry, log=lambda m: None)
    run = load_run(out, registry=registry)
    image = run.generate(["a red circle", "two blue squares"], seed=0).images[-1]
    assert image.shape == (2, 3, 32, 32) and torch.isfinite(image).all()
    from t2i_stages.export.api import export_run

    res = export_run(out, registry=registry, exporter="torchscript", parity_batches=[2])
    assert res.manifest["parity"]["fp32"]["cases"]  # a parity failure raises
    png = tmp_path / "g.png"
    argv = ["generate", "--onnx", str(res.folder), "--text", "a red circle", "--n", "2"]
    assert main([*argv, "--provider", "cpu", "--out", str(png)]) == 0 and png.is_file()
    recipe = load_recipe(
        out / "import.recipe.yaml",
        [f"train.init_from={out}", "matcher.params.pretrain.steps=1"],
        registry,
    )
    trainer = Trainer(recipe, registry, tmp_path / "tune", log=lambda *a, **k: None)
    got = trainer.G.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ours.items())
    assert trainer.step == 0
