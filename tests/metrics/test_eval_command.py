"""`t2i-stages eval` on a trained micro run, the end-of-training evaluation, CLIP-space metrics."""

from __future__ import annotations

import json
import math

import pytest

from t2i_stages.cli.main import main
from t2i_stages.evaluation import evaluate_run_dir


def _quiet(_: str) -> None:
    pass


def test_training_writes_metrics_through_the_same_path(micro_run_dir):
    report = json.loads((micro_run_dir / "metrics.json").read_text())
    assert report["protocol"]["num_samples"] == 16
    assert report["protocol"]["source"] == "end of training"
    # micro lists no metrics: the asset-free defaults ran (the run has a matcher)
    assert "FD[matcher]" in report["results"]["fid"]["values"]
    assert "R-precision[run]" in report["results"]["r_precision"]["values"]
    assert (micro_run_dir / "metrics.md").is_file()
    # the plugin (package, version) of every component and metric, beside the numbers
    builtin = {"plugin": "builtin-generators", "package": "t2i-stages", "version": "0.1.0"}
    assert report["plugins"]["generator/stagewise"] == builtin
    assert report["plugins"]["metric/fid"]["plugin"] == "builtin-metrics"
    assert report["results"]["fid"]["better"]["FD[matcher]"] == "lower"


def test_eval_command_writes_metrics_with_protocol(micro_run_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(
        ["eval", str(micro_run_dir), "--metrics", "fid:extractor=random", "kid:extractor=matcher",
         "r_precision:candidates=10:folds=2", "cmd:space=matcher", "--num-samples", "12",
         "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    assert "| FD[random] |" in capsys.readouterr().out
    report = json.loads((out / "metrics.json").read_text())
    p = report["protocol"]
    assert p["num_samples"] == 12 and p["noise_seed"] == 100 and p["split"] == "test"
    assert {"torch", "clean-fid", "numpy"} <= set(p["versions"])
    assert report["plugins"]["metric/cmd"]["package"] == "t2i-stages"  # given on the command line
    fid = report["results"]["fid"]
    assert len(fid["protocol"]["weights_sha256"]) == 64
    assert "resizer" in fid["protocol"] and "reference" in fid["protocol"]
    assert "not FID" in fid["protocol"]["label"] and "FID" not in fid["values"]
    assert set(report["results"]["kid"]["values"]) == {"KD[matcher]"}
    cmd = report["results"]["cmd"]
    for key in ("CMD (paper)", "CMD (script)", "ITDis (paper)", "ITDis (script)"):
        assert math.isfinite(cmd["values"][key])
    assert cmd["values"]["CMD (paper)"] >= cmd["values"]["CMD (script)"]
    assert cmd["protocol"]["headline_form"] == "paper"
    rp = report["results"]["r_precision"]
    assert rp["protocol"]["candidates"] == 10 and 0.0 <= rp["values"]["R-precision[run]"] <= 1.0
    assert (out / "metrics.md").read_text().count("|") > 10
    # the same seed gives the same numbers
    again = evaluate_run_dir(
        micro_run_dir, ["fid:extractor=random"], num_samples=12, out_dir=tmp_path / "b", log=_quiet
    )
    assert again["results"]["fid"]["values"] == fid["values"]


def test_eval_offline_inception_error_is_a_clean_exit(micro_run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("T2I_STAGES_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    assert main(["eval", str(micro_run_dir), "--metrics", "fid", "--num-samples", "4"]) == 2
    err = capsys.readouterr().err
    assert "inception-2015-12-05.pt" in err and str(tmp_path / "home") in err


def test_eval_rejects_unknown_params(micro_run_dir, capsys):
    assert main(["eval", str(micro_run_dir), "--metrics", "fid:extractr=random"]) == 2
    assert "extractr" in capsys.readouterr().err


def test_clip_space_metrics_with_a_local_folder(micro_run_dir, tiny_clip_folder, tmp_path):
    folder = str(tiny_clip_folder)
    report = evaluate_run_dir(
        micro_run_dir,
        [f"clip_score:clip_folder={folder}", f"cmd:clip_folder={folder}",
         f"r_precision:encoder=clip:clip_folder={folder}:candidates=8:folds=2"],
        num_samples=10,
        out_dir=tmp_path,
        log=_quiet,
    )  # fmt: skip
    res = report["results"]
    assert 0.0 <= res["clip_score"]["values"]["CLIPScore"] <= 100.0
    assert res["cmd"]["protocol"]["space"].startswith("clip(")
    assert "no CLIP normalisation" in res["cmd"]["protocol"]["resizer"]
    assert res["cmd"]["protocol"]["image_features"] == "L2-normalised x 10.0"
    assert res["r_precision"]["protocol"]["encoder"].startswith("clip(")


def test_missing_clip_folder_fails_before_generation(micro_run_dir, tmp_path):
    from t2i_stages.assets import MissingAssetError

    with pytest.raises(MissingAssetError, match="CLIP model folder"):
        evaluate_run_dir(
            micro_run_dir, [f"clip_score:clip_folder={tmp_path}/nope"], num_samples=4, log=_quiet
        )


def test_eval_keeps_the_training_metrics_and_earlier_evaluations(micro_run_dir, capsys):
    before = (micro_run_dir / "metrics.json").read_text()
    args = ["eval", str(micro_run_dir), "--metrics", "fid:extractor=random", "--num-samples", "8"]
    assert main(args) == 0
    assert main(args) == 0  # the same protocol twice: two folders
    err = capsys.readouterr().err
    assert "eval:" in err and "img" in err  # the progress bar
    assert (micro_run_dir / "metrics.json").read_text() == before
    folders = sorted((micro_run_dir / "evals").iterdir())
    assert len(folders) >= 2
    assert all(f.name.startswith("fid-n8-seed100-") for f in folders[-2:])
    for f in folders[-2:]:
        assert (
            "FD[random]" in json.loads((f / "metrics.json").read_text())["results"]["fid"]["values"]
        )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(micro_run_dir / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert any(t.startswith("eval/fid-n8-seed100-") and t.endswith("FD[random]") for t in tags)
    assert any(t == "eval/R-precision[run]" for t in tags)  # the end-of-training evaluation
