"""`t2i-stages summary` and the summarize() API on the paper-size recipes."""

from __future__ import annotations

import json

import pytest
from model_helpers import RECIPES, recipe_from_file, tiny_discriminators, tiny_generator

from t2i_stages.cli.main import main
from t2i_stages.summary import summarize, summarize_models


def test_summary_prints_counts_and_shapes(capsys):
    assert main(["summary", str(RECIPES["dmgan"])]) == 0
    out = capsys.readouterr().out
    assert "22,335,314 (22.34M)" in out
    for line in ("1,878,242 (1.88M)", "5,155,810 (5.16M)", "18,264,546 (18.26M)"):
        assert line in out
    assert "features 2x64x128x128 -> image 2x3x128x128" in out
    assert "2x12x64x64" in out and "2x12x128x128" in out  # attention maps
    assert "dynamic_memory" in out and "no training" in out


def test_summary_json_and_overrides_reach_the_cub_counts(capsys):
    # §11 also gives CUB counts: AttnGAN G 7.08M, Ds 97.6M (gf 32, df 64, R 2); DM-GAN G 21.45M.
    r2 = [f"generator.params.stages.{i}.params.residual_blocks=2" for i in (1, 2)]
    attn = ["generator.params.gf=32", *r2] + [f"discriminators.{i}.params.df=64" for i in range(3)]
    args = ["summary", str(RECIPES["attngan"]), "--json", "--words", "5", "--batch-size", "3"]
    assert main(args + [a for s in attn for a in ("--set", s)]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["component"]: r for r in data["rows"] if r["depth"] == 0}
    assert round(rows["generator"]["params"] / 1e6, 2) == 7.08
    assert round(sum(rows[f"discriminators.{i}"]["params"] for i in range(3)) / 1e6, 1) == 97.6
    assert data["batch_size"] == 3 and data["words"] == 5
    att = [r["attention"] for r in data["rows"] if r["component"].startswith("stages.")]
    assert att == ["-", "3x5x64x64", "3x5x128x128"]
    args = ["summary", str(RECIPES["dmgan"]), "--json"]
    assert main(args + [a for s in r2 for a in ("--set", s)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert round(data["rows"][0]["params"] / 1e6, 2) == 21.45


def test_summary_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    text = RECIPES["grgan"].read_text().replace("type: dynamic_memory", "type: dynamic_memroy", 1)
    bad.write_text(text)
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:" in err and "did you mean 'dynamic_memory'" in err
    assert err.count("\n") == 1
    mismatch = tmp_path / "mismatch.yaml"
    mismatch.write_text(
        RECIPES["attngan"]
        .read_text()
        .replace("conditioning: {type: words}", "conditioning: {type: sentence}", 1)
    )
    assert main(["summary", str(mismatch)]) == 2
    err = capsys.readouterr().err
    assert "fusion 'word_attention' needs a word sequence but conditioning 'sentence'" in err


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_summarize_api_gives_every_stage_shape(registry, name):
    table = summarize(recipe_from_file(name), registry)
    rows = {r.component: r for r in table.rows}
    if name == "dfgan":
        assert rows["generator"].output == "images 2x3x256x256"
        assert "cond 2" in rows["discriminators.0"].output
        return
    gf = {"attngan": 48, "dmgan": 64, "grgan": 64}[name]
    for i, res in enumerate((64, 128, 256)):
        assert rows[f"stages.{i}"].output == f"features 2x{gf}x{res}x{res} -> image 2x3x{res}x{res}"
        assert rows[f"discriminators.{i}"].plugin == f"stagewise ({res}px)"
    assert [rows[f"stages.{i}"].attention for i in range(3)] == ["-", "2x12x64x64", "2x12x128x128"]
    assert table.notes == []


def test_summary_on_cpu_runs_the_models(registry):
    table = summarize_models(
        tiny_generator("grgan"), tiny_discriminators("grgan"), registry, device="cpu"
    )
    assert table.device == "cpu"
    assert "cond head built" not in table.to_text()  # tiny GR-GAN D1 has no cond head
    d1 = next(r for r in table.rows if r.component == "discriminators.1")
    assert d1.output == "features 2x16x4x4; cond 2"  # 32 px: 3 stride-2 convs, 4df


def test_summary_notes_resolution_mismatch(registry):
    ds = tiny_discriminators("attngan")
    ds[1].params = {**ds[1].params, "resolution": 64}
    table = summarize_models(tiny_generator("attngan"), ds, registry)
    assert table.notes == ["discriminators.1 takes 64px images but generator stage 1 makes 32px"]
