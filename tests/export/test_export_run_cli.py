"""`t2i-stages export` on a trained run and `t2i-stages generate` with both backends."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from t2i_stages.cli.main import main


@pytest.fixture(scope="module")
def fused_export(micro_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("fused") / "deploy"
    rc = main(["export", str(micro_run), "--out", str(out), "--fused", "--fp16"])
    assert rc == 0
    return out


def test_export_writes_a_fused_fp16_deployment_with_provenance(micro_run, fused_export, capsys):
    m = json.loads((fused_export / "model.json").read_text())
    assert m["layout"] == "fused" and m["precisions"] == ["fp32", "fp16"]
    assert m["graphs"]["fp32"]["fused"]["file"] == "model.onnx"
    assert m["graphs"]["fp16"]["fused"]["file"] == "model.fp16.onnx"
    assert m["graphs"]["fp32"]["fused"]["inputs"] == ["token_ids", "token_mask", "z", "eps"]
    names = {p.name for p in fused_export.iterdir()}
    assert {"model.onnx", "model.fp16.onnx", "vocab.json", "recipe.resolved.yaml"} <= names
    assert not {"generator.onnx", "text_encoder.onnx"} & names
    recipe_sha = hashlib.sha256((micro_run / "recipe.resolved.yaml").read_bytes()).hexdigest()
    src = m["source"]
    assert src["recipe_sha256"] == recipe_sha and src["recipe_name"] == "micro"
    assert src["weights"] == "generator_ema" and src["step"] == 2
    stage = m["plugins"]["stage/refine"]
    assert stage == {"plugin": "builtin-stages", "package": "t2i-stages", "version": "0.1.0"}
    assert m["parity"]["fp32"]["passed"] and m["parity"]["fp16"]["passed"]
    assert m["parity"]["fp16"]["atol"] == 1e-2
    assert m["parity"]["fp16"]["max_abs_diff"] > m["parity"]["fp32"]["max_abs_diff"]


def _grid(path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_generate_gives_the_same_grid_with_pytorch_and_onnx(micro_run, fused_export, tmp_path):
    common = ["--text", "a red circle", "--text", "", "--n", "3", "--seed", "5"]
    common += ["--provider", "cpu"]
    fp32 = ["--precision", "fp32"]  # the PyTorch side in fp32, as the parity check
    assert (
        main(["generate", *common, "--onnx", str(fused_export), "--out", str(tmp_path / "o.png")])
        == 0
    )
    assert (
        main(
            [
                "generate",
                *common,
                *fp32,
                "--model",
                str(micro_run),
                "--out",
                str(tmp_path / "t.png"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "generate",
                *common,
                "--onnx",
                str(fused_export),
                "--precision",
                "fp16",
                "--out",
                str(tmp_path / "h.png"),
            ]
        )
        == 0
    )
    onnx_grid, torch_grid, half = (_grid(tmp_path / f) for f in ("o.png", "t.png", "h.png"))
    # 2 captions x 3 images of 32 px, shown at 64 px, a caption line above each row
    assert onnx_grid.shape == (2 * (12 + 64 + 2) + 2, 3 * 66 + 2, 3)
    assert np.abs(onnx_grid - torch_grid).max() <= 1  # uint8 rounding only
    assert np.abs(half - torch_grid).max() <= 4
    other = tmp_path / "seed6.png"
    assert (
        main(
            [
                "generate",
                *common[:-4],
                "--seed",
                "6",
                "--provider",
                "cpu",
                "--onnx",
                str(fused_export),
                "--out",
                str(other),
            ]
        )
        == 0
    )
    assert (_grid(other) != onnx_grid).any()  # the seed changes the noise


def test_exported_weights_are_the_ema_generator(micro_run, fused_export):
    from t2i_stages.api import load_run
    from t2i_stages.export.runtime import draw_noise, load_deployment

    dep = load_deployment(fused_export, "cpu")
    captions = ["a big blue square", "a red circle"]
    got = dep.generate(captions, seed=2)
    z, eps = (torch.from_numpy(a) for a in draw_noise(2, dep.z_dim, dep.eps_dim, 2))
    with torch.no_grad():
        ema = load_run(micro_run, "cpu", ema=True).generate(captions, z=z, eps=eps).images
        raw = load_run(micro_run, "cpu", ema=False).generate(captions, z=z, eps=eps).images
    for a, b in zip(got, ema, strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-3, atol=1e-5)
    # the raw generator is farther away than the parity tolerance: EMA weights were exported
    assert not np.allclose(got[-1], raw[-1].numpy(), rtol=1e-3, atol=1e-5)


def test_recipe_export_slot_chooses_the_params(micro_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(micro_run, run, ignore=shutil.ignore_patterns("samples", "tb", "attention"))
    recipe = yaml.safe_load((run / "recipe.resolved.yaml").read_text())
    recipe["export"] = {
        "type": "onnx",
        "params": {"exporter": "torchscript", "parity_batches": [2], "parity_lengths": [5, 3]},
    }
    (run / "recipe.resolved.yaml").write_text(yaml.safe_dump(recipe))
    from t2i_stages.export.api import export_run

    res = export_run(run)  # default --out: RUN_DIR/onnx
    assert res.folder == run / "onnx"
    m = res.manifest
    assert m["exporter"] == "torchscript" and m["opset"] == 17
    assert [(c["batch"], c["length"]) for c in m["parity"]["fp32"]["cases"]] == [(2, 5), (2, 3)]
    res2 = export_run(run, parity=False, opset=16)  # keyword params override the recipe
    assert res2.manifest["opset"] == 16
    assert res2.manifest["parity"] == {"checked": False, "reason": "disabled (--no-parity)"}


def test_cli_errors_exit_2_with_one_line(micro_run, fused_export, tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run folder" in err
    bad = ["export", str(micro_run), "--exporter", "torchscript", "--opset", "19"]
    assert main(bad) == 2
    assert "opset 17 at most" in capsys.readouterr().err
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    assert (
        main(
            [
                "export",
                str(micro_run),
                "--out",
                str(tmp_path / "keep"),
                "--exporter",
                "torchscript",
                "--no-parity",
            ]
        )
        == 2
    )
    assert "is not a deployment folder" in capsys.readouterr().err
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"
    gen = ["generate", "--text", "a", "--out", str(tmp_path / "g.png")]
    assert main([*gen, "--onnx", str(fused_export), "--stage", "5", "--provider", "cpu"]) == 2
    assert "--stage 5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*gen, "--onnx", str(fused_export), "--model", str(micro_run)])
    assert exc.value.code == 2
    capsys.readouterr()
    rc = main([*gen, "--onnx", str(fused_export), "--provider", "cuda"])
    if rc != 0:  # no usable CUDA here
        assert rc == 2
        err = capsys.readouterr().err
        assert "provider 'cuda' was requested" in err.splitlines()[-1]
    if not torch.cuda.is_available():
        assert main([*gen, "--model", str(micro_run), "--provider", "cuda"]) == 2
        assert "torch sees no CUDA device" in capsys.readouterr().err
        cuda = ["--provider", "cuda", "--allow-cpu-fallback"]
        assert main([*gen, "--model", str(micro_run), *cuda]) == 0
        err = capsys.readouterr().err
        assert "warning: provider 'cuda' was requested" in err and "continuing on the CPU" in err


def test_generate_runs_on_a_cpu_machine_with_default_flags(
    micro_run, fused_export, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for backend in (["--onnx", str(fused_export)], ["--model", str(micro_run)]):
        out = tmp_path / f"{backend[0][2:]}.png"
        assert main(["generate", "--text", "a red circle", *backend, "--out", str(out)]) == 0
        printed = capsys.readouterr()
        assert "CPU" in printed.out or "cpu" in printed.out
        assert "warning" not in printed.err  # known words, short caption: nothing to say


def test_generate_warns_about_unknown_and_truncated_words(
    micro_run, fused_export, tmp_path, capsys
):
    from t2i_stages.export.api import generate

    long = " ".join(["a red circle"] * 20)  # 60 words, the micro model reads 40
    for backend in (["--onnx", str(fused_export)], ["--model", str(micro_run)]):
        args = ["generate", "--text", "a purple blorb", "--text", long, "--n", "2", *backend]
        assert main([*args, "--provider", "cpu", "--out", str(tmp_path / "w.png")]) == 0
        err = capsys.readouterr().err.splitlines()
        unknown = [line for line in err if "not in the model's vocabulary" in line]
        assert len(unknown) == 1 and "blorb" in unknown[0] and unknown[0].startswith("warning: ")
        assert any("60 tokens, more than the model's 40; truncated" in line for line in err)
    with pytest.warns(UserWarning, match="blorb"):
        res = generate(["a blorb"], tmp_path / "api.png", onnx=fused_export, n=1, provider="cpu")
    assert len(res.warnings) == 1


def test_the_grid_writes_each_caption_above_its_row(fused_export, tmp_path):
    from t2i_stages.export.api import generate

    res = generate(
        ["a red circle", "a big blue square"], tmp_path / "g.png", onnx=fused_export, n=2
    )
    grid = _grid(res.path)
    plain = tmp_path / "plain.png"
    from t2i_stages.export.runtime import save_grid

    save_grid(res.images[-1], plain, ncol=2)
    assert grid.shape[0] > _grid(plain).shape[0]  # room for two caption lines
    assert grid.shape[1] == _grid(plain).shape[1]
    label = grid[2:12]  # the first caption's line, above the first row of images
    assert (label < 100).any()  # dark text on white
